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
using MediatorDiT.Pipelines;
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
        var labels = new Option<string?>("--labels") { Description = "class labels, comma-separated (default: cycle through the classes); a SiT model also takes its class count, the null label, for unconditional samples" };
        var numImages = new Option<int?>("--num-images") { Description = "images in all (default: one per label, or 16)" }.AtLeast(1);
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 16 }.BatchSize();
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0 };
        var rank = new Option<int>("--rank") { Description = "this process's share: images i with i mod world size = rank (default: the launcher's rank, else 0)", DefaultValueFactory = _ => Launch.LaunchEnvironment.Detect().Rank }.AtLeast(0);
        var world = new Option<int>("--world-size") { Description = "processes sharing the images (default: the launcher's world size, else 1)", DefaultValueFactory = _ => Launch.LaunchEnvironment.Detect().WorldSize }.AtLeast(1);
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
        var device = new DeviceOptions("sampling");
        var noProgress = new Option<bool>("--no-progress");
        var command = new Command("sample", "Sample images from a model or a mediator ladder with the step-wise dynamic schedule.")
        {
            checkpoint, ladder, config, ratios, first, distance, perSample, switchAt, mode, method, steps, lastStep, lastStepSize, diffusionForm,
            cfgScale, cfgAll, labels, numImages, batch, seed, rank, world, output, npz, saveLatents, initialNoise, noiseFile, vae, threads, noProgress,
            family, numHeads, imageSize, diffusionSteps, ddim, eta,
        };
        device.AddTo(command);
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            var (compute, deviceModels) = device.ApplyForSampling(ComputeContext.WithThreads(p.GetValue(threads)), p);
            using var deviceScope = deviceModels;
            string outDir = p.GetValue(output)!;
            using var outFolder = FreshFolder.Create(outDir, "output folder"); // removed again if the run fails before writing to it
            string[] paths = OptionValues.ModelPaths(p.GetValue(checkpoint), p.GetValue(ladder));
            var pipeline = DiffusionPipeline.LoadLadder(paths, new PipelineLoadOptions
            {
                ConfigPath = p.GetValue(config),
                Family = p.GetValue(family) is string fam ? ModelFamilies.Parse(fam, "--family") : null,
                NumHeads = p.GetValue(numHeads),
                VaePath = p.GetValue(vae),
                Compute = compute,
                DeviceModels = deviceModels,
            });
            var cfg = pipeline.Config;
            bool dit = cfg.Family == ModelFamily.DiT;
            if (p.GetValue(imageSize) is int askedSize && askedSize != pipeline.ImageSize)
                throw new MediatorDiTException(
                    $"--image-size {askedSize}: {paths[0]} generates {pipeline.ImageSize}x{pipeline.ImageSize} images only (its position embedding holds a {cfg.GridSize}x{cfg.GridSize} token grid of patch {cfg.PatchSize}{(pipeline.IsPixelSpace ? "" : " on a /8 latent")}); use a checkpoint trained at {askedSize} px.");
            if (dit && paths.Length > 1)
                throw new MediatorDiTException("a mediator ladder is sampled with SiT's transport; DiT checkpoints take --checkpoint W (one model).");
            if (!dit && p.GetValue(ddim) is not null)
                throw new MediatorDiTException("--ddim applies to DiT checkpoints (Gaussian diffusion); SiT samples with --mode sde|ode.");
            if (dit && p.GetValue(noiseFile) is not null && p.GetValue(ddim) is not null && p.GetValue(eta) == 0f)
                throw new MediatorDiTException("--noise-file replays the draws of ancestral sampling or of DDIM with --eta above 0; DDIM with --eta 0 uses no noise after z (give z with --initial-noise).");
            sampler.CheckGuidance(p, cfg.InChannels);
            foreach (var (path, model) in paths.Zip(pipeline.Models))
                Console.Error.WriteLine($"{path}: {Describe(model.Config)}");
            if (deviceModels is not null) Console.Error.WriteLine($"device: {deviceModels.DeviceName}");

            var options = sampler.Generation(p, new GenerationOptions()) with
            {
                Labels = p.GetValue(labels) is string ls ? OptionValues.Integers(ls, "--labels", "comma-separated class numbers such as 0,3,7") : [],
                NumImages = p.GetValue(numImages),
                BatchSize = p.GetValue(batch),
                Seed = p.GetValue(seed),
                Rank = p.GetValue(rank),
                WorldSize = p.GetValue(world),
                Schedule = sampler.Schedule(p, p.GetValue(switchAt), p.GetValue(ratios), p.GetValue(perSample)),
                InitialNoise = p.GetValue(initialNoise) is string zf ? SafeTensors.Read(zf).GetFloat("z") : null,
                NoiseDraws = p.GetValue(noiseFile) is string nf ? SafeTensors.Read(nf).GetFloat("noise") : null,
                NoiseDrawsName = $"--noise-file {p.GetValue(noiseFile)}",
                Decode = pipeline.Vae is not null,
            };
            if (dit)
                options = options with
                {
                    Sampler = p.GetValue(ddim) is null ? SamplerKind.Ancestral : SamplerKind.Ddim,
                    Steps = p.GetValue(ddim) ?? p.GetValue(diffusionSteps),
                    Eta = p.GetValue(eta),
                };
            if (options.WorldSize < 1 || options.Rank < 0 || options.Rank >= options.WorldSize)
                throw new MediatorDiTException($"--rank {options.Rank} must be in [0, --world-size {options.WorldSize}).");
            if (!pipeline.IsPixelSpace && pipeline.Vae is null && !p.GetValue(npz) && p.GetValue(saveLatents) is null)
                throw new MediatorDiTException($"the model makes {cfg.InChannels}-channel latents; pass --vae W to decode them into images, or --save-latents F.");
            if (pipeline.Models.Count > 1) Console.Error.WriteLine($"schedule: {pipeline.CreateSchedule(options).Description}");

            int mine = Enumerable.Range(0, options.TotalImages).Count(i => i % options.WorldSize == options.Rank);
            var gridImages = new List<Tensor>();
            var allLatents = new List<Tensor>();
            int gridCount = 0;
            NpzWriter? npzWriter = null;
            NpyArrayWriter? npzArray = null;
            GenerationRecord record;
            using var renderer = ProgressRenderer.Create(p.GetValue(noProgress));
            var clock = Stopwatch.StartNew();
            var progress = new ImmediateProgress<GenerationProgress>(g =>
                renderer.Report(g.Step, g.StepCount, $"images {g.ImagesDone}-{g.ImagesDone + g.BatchSize} of {g.Images}, {clock.Elapsed.TotalSeconds:F1} s"));
            try
            {
                record = pipeline.Run(options, batch =>
                {
                    var images = batch.Images;
                    if (images.Dim(1) is 1 or 3)
                    {
                        for (int k = 0; k < batch.Indices.Count; k++)
                        {
                            var image = ImageConversion.ToImage(images, k);
                            PngEncoder.Write(Path.Combine(outDir, $"{batch.Indices[k]:D6}.png"), image);
                            if (p.GetValue(npz))
                            {
                                npzWriter ??= new NpzWriter(Path.Combine(outDir, options.WorldSize > 1 ? $"samples-rank{options.Rank}.npz" : "samples.npz"));
                                npzArray ??= npzWriter.BeginArray("arr_0", DType.U8, mine, image.Height, image.Width, 3);
                                npzArray.Write(image.ToRgb().Pixels);
                            }
                        }
                    }
                    if (gridCount < GridImages) { gridImages.Add(FirstImages(images, GridImages - gridCount)); gridCount += Math.Min(images.Dim(0), GridImages - gridCount); }
                    if (p.GetValue(saveLatents) is not null) allLatents.Add(batch.Samples);
                }, progress, token);
                npzWriter?.Complete();
            }
            finally
            {
                npzWriter?.Dispose();
            }
            renderer.Done();
            var all = Tensor.ConcatBatches(gridImages);
            // Ranks sharing one folder: rank 0 draws the grid, each rank writes its own record.
            if (all.Dim(1) is 1 or 3 && options.Rank == 0) ImageGrid.SaveGrid(Path.Combine(outDir, "grid.png"), all, (int)Math.Ceiling(Math.Sqrt(all.Dim(0))));
            if (p.GetValue(saveLatents) is string latentsPath)
                SafeTensors.Write(CliApp.OutputFile(latentsPath), new Dictionary<string, StoredTensor> { ["samples"] = StoredTensor.FromFloat(Tensor.ConcatBatches(allLatents)) });
            RunRecordFile.Write(Path.Combine(outDir, options.WorldSize > 1 ? $"run-rank{options.Rank}.json" : "run.json"), record);
            double wall = record.WallSeconds;
            Console.WriteLine($"{record.ImageCount} images in {wall:F1} s ({record.ImageCount / wall:F2} images/s) -> {outDir}");
            Console.WriteLine($"mean {record.MeanGflopsPerImage:F2} GFLOPs per image" + (pipeline.Models.Count > 1 ? $" ({100 * record.FlopsSaving:F1}% less than the largest model alone)" : ""));
            return 0;
        }, token));
        return command;
    }

    /// <summary>The grid shows at most this many images, so a 50,000-image run keeps only these in memory.</summary>
    private const int GridImages = 64;

    private static string Describe(ModelConfig c) =>
        $"{c.Family}, hidden {c.HiddenSize}, depth {c.Depth}, {c.NumHeads} heads, patch {c.PatchSize}, " +
        $"{AttentionKinds.Describe(c)}, {c.NumClasses} classes, " +
        $"{c.InChannels} channels{(c.LearnSigma ? " + learned sigma" : "")}, {ModelConfigInference.ImageSize(c)} px";

    private static Tensor FirstImages(Tensor images, int count)
    {
        if (images.Dim(0) <= count) return images;
        var first = new Tensor([count, .. images.Shape[1..]]);
        images.Span[..first.Length].CopyTo(first.Span);
        return first;
    }

}
