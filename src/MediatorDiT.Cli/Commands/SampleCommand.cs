using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MediatorDiT.Cli.Rendering;
using MediatorDiT.Data;
using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Models.Vae;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit sample`: samples from one checkpoint or a ladder of checkpoints with growing mediator counts,
/// switching between them with the step-wise dynamic schedule (SiT transport, SDE/ODE samplers), or from
/// a DiT checkpoint with DiT's Gaussian diffusion (respaced ancestral sampling or DDIM). Checkpoints
/// without a config (the released DiT/SiT files) have theirs read off their shapes. Writes PNGs, a grid
/// (of the first images), an optional .npz for the ADM evaluation suite, optional latents, and a JSON
/// run record (options, switch steps per sample, FLOPs per image, wall time). All input is validated
/// before the first network call.
/// </summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "one model's weights (.safetensors or .pt)" };
        var ladder = new Option<string?>("--ladder") { Description = "comma-separated weights with increasing mediator counts, e.g. m4.safetensors,m16.safetensors,m64.safetensors" };
        var config = new Option<string?>("--config") { Description = "model config JSON for weights that carry none" };
        var ratios = new Option<string?>("--ratios") { Description = "switch ratios, one per move up the ladder, not increasing, in [0, 1] (default 0.9,0.6)" };
        var sampler = new SamplerOptions();
        var first = sampler.First;
        var distance = sampler.Distance;
        var perSample = new Option<bool>("--per-sample") { Description = "switch per sample instead of on the batch mean (the official rule)" };
        var switchAt = new Option<string?>("--switch-at") { Description = "fixed schedule: fractions of the steps at which to move up, e.g. 0.3,0.7" };
        var mode = sampler.Mode;
        var method = sampler.Method;
        var steps = sampler.Steps;
        var lastStep = sampler.LastStep;
        var lastStepSize = sampler.LastStepSize;
        var diffusionForm = sampler.DiffusionForm;
        var cfgScale = sampler.CfgScale;
        var cfgAll = sampler.CfgAll;
        var labels = new Option<string?>("--labels") { Description = "class labels, comma-separated (default: cycle through the classes)" };
        var numImages = new Option<int?>("--num-images") { Description = "images in all (default: one per label, or 16)" }.AtLeast(1);
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 16 }.BatchSize();
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0 };
        var rank = new Option<int>("--rank") { DefaultValueFactory = _ => 0 }.AtLeast(0);
        var world = new Option<int>("--world-size") { DefaultValueFactory = _ => 1 }.AtLeast(1);
        var output = new Option<string>("--out") { Description = "output folder", DefaultValueFactory = _ => "samples" };
        var npz = new Option<bool>("--npz") { Description = "also write samples.npz (arr_0, uint8 NHWC) for the ADM evaluation suite" };
        var saveLatents = new Option<string?>("--save-latents") { Description = "write the final samples as tensor 'samples' to this safetensors file" };
        var initialNoise = new Option<string?>("--initial-noise") { Description = "safetensors with the starting noise 'z' (B, C, H, W)" };
        var noiseFile = new Option<string?>("--noise-file") { Description = "safetensors with the per-step noise draws 'noise' (steps, B, C, H, W), B doubled under guidance: SiT SDE, DiT ancestral or DDIM with --eta above 0" };
        var vae = new Option<string?>("--vae") { Description = "VAE weights to decode latent samples into images" };
        var family = new Option<string?>("--family") { Description = "DiT or SiT, for checkpoints without a config whose file name says neither" };
        var numHeads = new Option<int?>("--num-heads") { Description = "attention heads of a full-attention checkpoint of non-standard width without a config" }.AtLeast(1);
        var imageSize = new Option<int?>("--image-size") { Description = "image size in pixels; must be the checkpoint's (256 for DiT-XL-2-256x256.pt)" };
        var diffusionSteps = new Option<int>("--diffusion-steps") { Description = "DiT: respaced steps of ancestral sampling (1..1000)", DefaultValueFactory = _ => 250 }.InRange(1, 1000);
        var ddim = new Option<int?>("--ddim") { Description = "DiT: DDIM with this many steps instead of ancestral sampling (1..1000)" }.InRange(1, 1000);
        var eta = new Option<float>("--eta") { Description = "DiT DDIM: eta (0 = deterministic)", DefaultValueFactory = _ => 0f };
        var threads = new Option<int?>("--threads").Threads();
        var noProgress = new Option<bool>("--no-progress");
        var command = new Command("sample", "Sample images from a model or a mediator ladder with the step-wise dynamic schedule.")
        {
            checkpoint, ladder, config, ratios, first, distance, perSample, switchAt, mode, method, steps, lastStep, lastStepSize, diffusionForm,
            cfgScale, cfgAll, labels, numImages, batch, seed, rank, world, output, npz, saveLatents, initialNoise, noiseFile, vae, threads, noProgress,
            family, numHeads, imageSize, diffusionSteps, ddim, eta,
        };
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            using var compute = ComputeContext.WithThreads(p.GetValue(threads)).Use();
            float scale = p.GetValue(cfgScale);
            int worldSize = p.GetValue(world), rankValue = p.GetValue(rank);
            if (worldSize < 1 || rankValue < 0 || rankValue >= worldSize)
                throw new MediatorDiTException($"--rank {rankValue} must be in [0, --world-size {worldSize}).");
            string outDir = p.GetValue(output)!;
            using var outFolder = FreshFolder.Create(outDir, "output folder"); // removed again if the run fails before writing to it

            string[] paths = p.GetValue(ladder) is string l ? OptionValues.Split(l)
                : p.GetValue(checkpoint) is string c ? [c]
                : throw new MediatorDiTException("give --checkpoint W or --ladder W1,W2,...");
            ModelFamily? familyOption = p.GetValue(family) is string fam ? ModelFamilies.Parse(fam, "--family") : null;
            var models = paths.Select(path => ModelFiles.Load(path, p.GetValue(config), family: familyOption, numHeads: p.GetValue(numHeads))).ToArray();
            foreach (var m in models) m.KeepActivations = false; // sampling needs no backward: one block of activations
            var guidance = sampler.Guidance(p, models[0].Config.InChannels);
            var cfg = models[0].Config;
            bool dit = cfg.Family == ModelFamily.DiT;
            // DiT's network returns 2C channels and is driven by the Gaussian diffusion, not the transport ladder.
            var modelLadder = dit ? null : ModelLadder.FromModels(models, guidance);
            double[] flopsPerCall = dit ? [FlopCounter.Count(cfg).PerImage * (scale > 1f ? 2 : 1)] : [.. modelLadder!.FlopsPerImage];
            int nativeSize = ModelConfigInference.ImageSize(cfg);
            if (p.GetValue(imageSize) is int askedSize && askedSize != nativeSize)
                throw new MediatorDiTException(
                    $"--image-size {askedSize}: {paths[0]} generates {nativeSize}x{nativeSize} images only (its position embedding holds a {cfg.GridSize}x{cfg.GridSize} token grid of patch {cfg.PatchSize}{(cfg.InChannels is 1 or 3 ? "" : " on a /8 latent")}); use a checkpoint trained at {askedSize} px.");
            if (dit && models.Length > 1)
                throw new MediatorDiTException("a mediator ladder is sampled with SiT's transport; DiT checkpoints take --checkpoint W (one model).");
            foreach (var (path, model) in paths.Zip(models))
                Console.Error.WriteLine($"{path}: {Describe(model.Config)}");
            GaussianDiffusion? diffusion = null;
            if (dit)
            {
                if (p.GetValue(noiseFile) is not null && p.GetValue(ddim) is not null && p.GetValue(eta) == 0f)
                    throw new MediatorDiTException("--noise-file replays the draws of ancestral sampling or of DDIM with --eta above 0; DDIM with --eta 0 uses no noise after z (give z with --initial-noise).");
                int ditSteps = p.GetValue(ddim) ?? p.GetValue(diffusionSteps);
                if (ditSteps < 1 || ditSteps > 1000)
                    throw new MediatorDiTException($"{(p.GetValue(ddim) is null ? "--diffusion-steps" : "--ddim")} must be in 1..1000, got {ditSteps}.");
                diffusion = GaussianDiffusion.Create(p.GetValue(ddim) is int n ? $"ddim{n}" : ditSteps.ToString(CultureInfo.InvariantCulture), learnSigma: cfg.LearnSigma);
            }
            else if (p.GetValue(ddim) is not null)
            {
                throw new MediatorDiTException("--ddim applies to DiT checkpoints (Gaussian diffusion); SiT samples with --mode sde|ode.");
            }

            IModelSchedule? schedule = null;
            if (models.Length > 1)
            {
                if (p.GetValue(switchAt) is string fractions)
                    schedule = new FixedModelSchedule(OptionValues.Split(fractions).Select(v => OptionValues.Number(v)).ToArray());
                else
                {
                    double[] r = p.GetValue(ratios) is string rs ? OptionValues.Split(rs).Select(v => OptionValues.Number(v)).ToArray()
                        : models.Length == 3 ? [0.9, 0.6] : Enumerable.Range(0, models.Length - 1).Select(i => 0.9 - 0.3 * i).ToArray();
                    schedule = new AdaptiveModelSchedule(r, p.GetValue(first), sampler.ParseDistance(p), p.GetValue(perSample) ? DecisionScope.PerSample : DecisionScope.BatchMean);
                }
            }

            int[] labelList = p.GetValue(labels) is string ls ? OptionValues.Integers(ls, "--labels", "comma-separated class numbers such as 0,3,7") : [];
            int total = p.GetValue(numImages) ?? (labelList.Length > 0 ? labelList.Length : 16);
            int[] allLabels = Enumerable.Range(0, total).Select(i => labelList.Length > 0 ? labelList[i % labelList.Length] : i % cfg.NumClasses).ToArray();
            modelLadder?.ValidateLabels(allLabels);
            foreach (int label in dit ? allLabels : [])
                if ((uint)label >= (uint)cfg.NumClasses)
                    throw new MediatorDiTException($"--labels: class {label} is outside the model's 0..{cfg.NumClasses - 1}.");
            int[] mine = Enumerable.Range(0, total).Where(i => i % worldSize == rankValue).ToArray();

            Tensor? replayZ = p.GetValue(initialNoise) is string zf ? SafeTensors.Read(zf).GetFloat("z") : null;
            Tensor? replayNoise = p.GetValue(noiseFile) is string nf ? SafeTensors.Read(nf).GetFloat("noise") : null;
            // Replayed z or DiT draws cover the whole run: one batch.
            int batchSize = replayZ is not null || (dit && replayNoise is not null) ? mine.Length : p.GetValue(batch);
            VaePipeline? decoder = p.GetValue(vae) is string vp ? VaePipeline.Load(vp) : null;
            if (decoder is null && cfg.InChannels is not (1 or 3) && !p.GetValue(npz) && p.GetValue(saveLatents) is null)
                throw new MediatorDiTException($"the model makes {cfg.InChannels}-channel latents; pass --vae W to decode them into images, or --save-latents F.");

            var transport = new Transport();
            bool sde = sampler.IsSde(p);
            var sdeSampler = sde ? sampler.BuildSde(p, transport) : null;
            var odeSampler = sde ? null : sampler.BuildOde(p, transport);

            var rng = new RandomSource(p.GetValue(seed) * (ulong)worldSize + (ulong)rankValue);
            var record = new List<object>();
            var allSamples = new List<Tensor>();
            var allLatents = new List<Tensor>();
            int gridCount = 0;
            NpzWriter? npzWriter = null;
            NpyArrayWriter? npzArray = null;
            var clock = Stopwatch.StartNew();
            double flopsSum = 0;
            using var renderer = ProgressRenderer.Create(p.GetValue(noProgress));
            try
            {
                for (int start = 0; start < mine.Length; start += batchSize)
                {
                    token.ThrowIfCancellationRequested();
                    var idx = mine.Skip(start).Take(batchSize).ToArray();
                    var y = idx.Select(i => allLabels[i]).ToArray();
                    var z = replayZ ?? new Tensor(idx.Length, cfg.InChannels, cfg.InputSize, cfg.InputSize);
                    if (replayZ is null) rng.FillGaussian(z.Span);
                    SamplingResult? result = null;
                    Tensor samples;
                    if (diffusion is not null)
                    {
                        int done0 = start;
                        IDiffusionNoise ditNoise = replayNoise is not null ? new ReplayedDiffusionNoise(replayNoise, $"--noise-file {p.GetValue(noiseFile)}") : new SeededDiffusionNoise(rng);
                        samples = DitSampling.Sample(diffusion, models[0], z, y, guidance, ditNoise, ddim: p.GetValue(ddim) is not null, eta: p.GetValue(eta),
                            onStep: i => renderer.Report(diffusion.NumTimesteps - i, diffusion.NumTimesteps, $"batch from image {done0}, {clock.Elapsed.TotalSeconds:F1} s"),
                            cancellationToken: token);
                    }
                    else
                    {
                        result = sde
                            ? sdeSampler!.Sample(modelLadder!, z, y, replayNoise is not null ? new ReplayNoiseSource(replayNoise) : new GaussianNoiseSource(rng), schedule, cancellationToken: token)
                            : odeSampler!.Sample(modelLadder!, z, y, schedule, cancellationToken: token);
                        samples = result.Samples;
                    }
                    var images = decoder?.DecodeLatents(samples, token) ?? samples;
                    for (int k = 0; k < idx.Length; k++)
                    {
                        if (result is null)
                        {
                            double perImage = flopsPerCall[0] * diffusion!.NumTimesteps;
                            flopsSum += perImage;
                            record.Add(new { index = idx[k], label = y[k], gflops = perImage / 1e9 });
                        }
                        else
                        {
                            var switches = Enumerable.Range(0, models.Length).Select(m => result.Usage.FirstStepOf(m, k)).ToArray();
                            flopsSum += result.Usage.FlopsPerImage[k];
                            record.Add(new { index = idx[k], label = y[k], first_step_of_model = switches, gflops = result.Usage.FlopsPerImage[k] / 1e9 });
                        }
                        if (images.Dim(1) is 1 or 3)
                        {
                            var image = ImageConversion.ToImage(images, k);
                            PngEncoder.Write(Path.Combine(outDir, $"{idx[k]:D6}.png"), image);
                            if (p.GetValue(npz))
                            {
                                npzWriter ??= new NpzWriter(Path.Combine(outDir, worldSize > 1 ? $"samples-rank{rankValue}.npz" : "samples.npz"));
                                npzArray ??= npzWriter.BeginArray("arr_0", DType.U8, mine.Length, image.Height, image.Width, 3);
                                npzArray.Write(image.ToRgb().Pixels);
                            }
                        }
                    }
                    if (gridCount < GridImages) { allSamples.Add(FirstImages(images, GridImages - gridCount)); gridCount += Math.Min(images.Dim(0), GridImages - gridCount); }
                    if (p.GetValue(saveLatents) is not null) allLatents.Add(samples);
                    renderer.Report(Math.Min(start + batchSize, mine.Length), mine.Length, $"{clock.Elapsed.TotalSeconds:F1} s");
                }
                npzWriter?.Complete();
            }
            finally
            {
                npzWriter?.Dispose();
            }
            renderer.Done();
            double wall = clock.Elapsed.TotalSeconds;
            var all = Concat(allSamples);
            if (all.Dim(1) is 1 or 3) ImageGrid.SaveGrid(Path.Combine(outDir, "grid.png"), all, (int)Math.Ceiling(Math.Sqrt(all.Dim(0))));
            if (p.GetValue(saveLatents) is string latentsPath)
                SafeTensors.Write(CliApp.OutputFile(latentsPath), new Dictionary<string, StoredTensor> { ["samples"] = StoredTensor.FromFloat(Concat(allLatents)) });
            double meanFlops = flopsSum / Math.Max(1, mine.Length);
            double largestFlops = flopsPerCall[^1] * (dit ? diffusion!.NumTimesteps : sde ? sdeSampler!.StepCount : p.GetValue(steps));
            var runRecord = new
            {
                command = Environment.GetCommandLineArgs().Skip(1),
                models = paths,
                family = cfg.Family.ToString(),
                sampler = dit ? (p.GetValue(ddim) is int dd ? $"ddim{dd} eta {p.GetValue(eta)}" : $"ancestral {diffusion!.NumTimesteps}") : sde ? "sde" : "ode",
                image_size = nativeSize,
                cfg_channels = SamplerOptions.RecordChannels(guidance),
                mediators = models.Select(m => m.Config.Attention == AttentionKind.Full ? 0 : m.Config.MediatorNum),
                images = mine.Length,
                wall_seconds = wall,
                mean_gflops_per_image = meanFlops / 1e9,
                largest_model_gflops_per_image = sde ? largestFlops / 1e9 : (double?)null,
                samples = record,
            };
            File.WriteAllText(Path.Combine(outDir, "run.json"), JsonSerializer.Serialize(runRecord, new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"{mine.Length} images in {wall:F1} s ({mine.Length / wall:F2} images/s) -> {outDir}");
            Console.WriteLine($"mean {meanFlops / 1e9:F2} GFLOPs per image" + (!dit && sde && models.Length > 1 ? $" ({100 * (1 - meanFlops / largestFlops):F1}% less than the largest model alone)" : ""));
            return 0;
        }, token));
        return command;
    }

    /// <summary>The grid shows at most this many images, so a 50,000-image run keeps only these in memory.</summary>
    private const int GridImages = 64;

    private static string Describe(ModelConfig c) =>
        $"{c.Family}, hidden {c.HiddenSize}, depth {c.Depth}, {c.NumHeads} heads, patch {c.PatchSize}, " +
        $"{(c.Attention == AttentionKind.Full ? "full attention" : $"{c.MediatorNum} mediators")}, {c.NumClasses} classes, " +
        $"{c.InChannels} channels{(c.LearnSigma ? " + learned sigma" : "")}, {ModelConfigInference.ImageSize(c)} px";

    private static Tensor FirstImages(Tensor images, int count)
    {
        if (images.Dim(0) <= count) return images;
        var first = new Tensor([count, .. images.Shape[1..]]);
        images.Span[..first.Length].CopyTo(first.Span);
        return first;
    }

    private static Tensor Concat(List<Tensor> parts)
    {
        int n = parts.Sum(t => t.Dim(0));
        var result = new Tensor([n, .. parts[0].Shape[1..]]);
        int offset = 0;
        foreach (var t in parts)
        {
            t.Span.CopyTo(result.Span[offset..]);
            offset += t.Length;
        }
        return result;
    }
}
