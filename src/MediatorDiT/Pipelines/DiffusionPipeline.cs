using System.Diagnostics;
using System.Globalization;
using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Models.Vae;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Pipelines;

/// <summary>Where a <see cref="DiffusionPipeline"/> finds what the weight files do not say.</summary>
public sealed record PipelineLoadOptions
{
    /// <summary>A model config JSON for weights that carry none (else it is read off the shapes).</summary>
    public string? ConfigPath { get; init; }

    /// <summary>DiT or SiT, for checkpoints without a config whose file name says neither.</summary>
    public ModelFamily? Family { get; init; }

    /// <summary>Attention heads of a full-attention checkpoint of non-standard width without a config.</summary>
    public int? NumHeads { get; init; }

    /// <summary>VAE weights that decode a latent model's samples into images.</summary>
    public string? VaePath { get; init; }

    /// <summary>The ladder's dynamic schedule; null: <c>schedule.json</c> beside the first weight file, if any.</summary>
    public string? SchedulePath { get; init; }

    /// <summary>Threads, GEMM backend and device the pipeline runs under; null: <see cref="ComputeContext.Default"/>.</summary>
    public ComputeContext? Compute { get; init; }

    /// <summary>
    /// Builds the networks' functions on <see cref="Compute"/>'s device when that is not the cpu (MediatorDiT.Cuda's
    /// <c>DeviceModelFactory.OpenCuda</c>); required there, unused on the cpu. It stays the caller's to dispose after the
    /// pipeline's last run; the pipeline then leaves the device check to it.
    /// </summary>
    public IDeviceModelFactory? DeviceModels { get; init; }
}

/// <summary>
/// Labels in, images out: one model or a ladder of models with growing mediator counts (with the ladder's
/// <c>schedule.json</c>), the VAE of a latent model, a released DiT or SiT checkpoint, and the sampler that
/// suits each. <see cref="Generate"/> samples under <see cref="GenerationOptions"/> and returns the images with
/// a <see cref="GenerationRecord"/> (switch steps per image, FLOPs, wall time); <see cref="Run"/> hands over one
/// batch at a time for runs too large to hold. Every image's noise is drawn from a generator seeded by the
/// run's seed and the image's global index, so an image does not depend on the batch size, rank or world size.
/// Thread-safe: the networks keep their scratch between calls, so runs of one pipeline take turns; a call from
/// another thread waits for the running one to end.
/// </summary>
public sealed class DiffusionPipeline
{
    /// <summary>The shipped Fashion-MNIST ladder's folder under <c>models/</c> and its files, cheapest first.</summary>
    public const string ShippedLadderFolder = "fashion-mnist-ladder";
    /// <summary>The shipped ladder's weight files in <see cref="ShippedLadderFolder"/>, cheapest first (4, 16, 64 mediators).</summary>
    public static IReadOnlyList<string> ShippedLadderFiles { get; } = ["m4.safetensors", "m16.safetensors", "m64.safetensors"];

    private readonly SiTModel[] _models;
    // One run (or warm-up) at a time: the models' workspaces are shared by every call.
    private readonly Lock _runGate = new();

    /// <summary>The networks, cheapest first (one for a single model).</summary>
    public IReadOnlyList<SiTModel> Models => _models;

    /// <summary>Where each model was loaded from (names such as "model 1" for models given in memory).</summary>
    public IReadOnlyList<string> Sources { get; }

    /// <summary>The first model's config (the ladder's models differ only in their mediator count).</summary>
    public ModelConfig Config => _models[0].Config;

    /// <summary>The VAE that decodes samples of a latent model, if given.</summary>
    public VaePipeline? Vae { get; }

    /// <summary>The ladder's stored schedule (schedule.json), if any, and where it was read.</summary>
    public ScheduleFile? StoredSchedule { get; }
    /// <summary>The file <see cref="StoredSchedule"/> was read from, or null.</summary>
    public string? StoredSchedulePath { get; }

    /// <summary>The compute settings every network, sampler and decoder call runs under.</summary>
    public ComputeContext Compute { get; }

    /// <summary>
    /// What evaluates the networks on <see cref="Compute"/>'s device, or null on the cpu. Samplers, schedules and the noise
    /// stay on the host; the network calls go to the device, and the VAE's decoding too where the factory runs it there
    /// (<see cref="IDeviceModelFactory.CreateVae"/>).
    /// </summary>
    public IDeviceModelFactory? DeviceModels { get; }

    /// <summary>Side of the generated images in pixels (8 x the latent side for latent models).</summary>
    public int ImageSize => ModelConfigInference.ImageSize(Config);

    /// <summary>True when the models work on 1- or 3-channel pixels, false for latents.</summary>
    public bool IsPixelSpace => Config.InChannels is 1 or 3;

    /// <summary>Classes the models know; labels lie in [0, NumClasses).</summary>
    public int NumClasses => Config.NumClasses;

    private DiffusionPipeline(SiTModel[] models, IReadOnlyList<string> sources, VaePipeline? vae, ScheduleFile? schedule,
        string? schedulePath, ComputeContext? compute, IDeviceModelFactory? deviceModels)
    {
        if (models.Length == 0) throw new MediatorDiTException("a pipeline needs at least one model, got none.");
        Compute = compute ?? ComputeContext.Default;
        CheckDevice(Compute, deviceModels);
        DeviceModels = Compute.Device == ComputeDevice.Cpu ? null : deviceModels;
        foreach (var model in models)
        {
            model.KeepActivations = false; // sampling needs no backward: one block of activations
            model.Compute = Compute;
        }
        _ = ModelLadder.FromModels(models); // the ladder's models must agree in all but their mediator count
        _models = models;
        Sources = sources;
        // On a device whose backend runs the VAE there, latents are decoded there too (the scale stays on the host).
        Vae = vae is not null && DeviceModels?.CreateVae(vae.Vae) is { } deviceVae ? vae.OnDevice(deviceVae) : vae;
        StoredSchedule = schedule;
        StoredSchedulePath = schedulePath;
    }

    /// <summary>One model's weights (.safetensors run export, or a released .pt / .safetensors checkpoint).</summary>
    public static DiffusionPipeline Load(string weightsPath, PipelineLoadOptions? options = null) => LoadLadder([weightsPath], options);

    /// <summary>
    /// A ladder of weight files with increasing mediator counts (or one file), with the ladder's
    /// <c>schedule.json</c> beside the first file (or <see cref="PipelineLoadOptions.SchedulePath"/>) and the VAE
    /// of <see cref="PipelineLoadOptions.VaePath"/>.
    /// </summary>
    public static DiffusionPipeline LoadLadder(IReadOnlyList<string> weightsPaths, PipelineLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(weightsPaths);
        options ??= new PipelineLoadOptions();
        if (weightsPaths.Count == 0) throw new MediatorDiTException("give at least one weight file, got none.");
        if (options.Compute is { } requested) CheckDevice(requested, options.DeviceModels); // before any weight is read
        var models = weightsPaths.Select(path => ModelFiles.Load(path, options.ConfigPath, family: options.Family, numHeads: options.NumHeads)).ToArray();
        string? schedulePath = options.SchedulePath;
        if (schedulePath is null && weightsPaths.Count > 1)
            schedulePath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(weightsPaths[0]))!, ScheduleFile.FileName);
        if (options.SchedulePath is not null && !File.Exists(options.SchedulePath))
            throw new MediatorDiTException($"schedule file '{options.SchedulePath}' does not exist.");
        var schedule = schedulePath is null ? null : ScheduleFile.TryRead(schedulePath);
        var vae = options.VaePath is null ? null : VaePipeline.Load(options.VaePath);
        return new DiffusionPipeline(models, weightsPaths.ToArray(), vae, schedule, schedule is null ? null : schedulePath, options.Compute,
            options.DeviceModels);
    }

    /// <summary>
    /// A device other than the cpu needs a device model factory (which then checks the device itself); without one,
    /// a missing driver, library or device is named first, else the missing factory.
    /// </summary>
    private static void CheckDevice(ComputeContext compute, IDeviceModelFactory? deviceModels)
    {
        var device = compute.DeviceSelection;
        if (device.Device == ComputeDevice.Cpu || deviceModels is not null) return;
        Devices.DeviceAvailability.RequireUsable(device);
        throw new MediatorDiTException(
            $"device {device}: a pipeline samples on the GPU through a device model factory (PipelineLoadOptions.DeviceModels, e.g. MediatorDiT.Cuda's DeviceModelFactory.OpenCuda); give one, or use the cpu.");
    }

    /// <summary>
    /// The Fashion-MNIST ladder shipped in the repository's <c>models/</c> folder (found as <see cref="ShippedModels"/>
    /// finds files), with its schedule.json.
    /// </summary>
    public static DiffusionPipeline LoadShippedLadder(PipelineLoadOptions? options = null) => LoadLadder(ShippedLadderPaths(), options);

    /// <summary>The shipped ladder's files, or a clear error naming where they were looked for.</summary>
    public static IReadOnlyList<string> ShippedLadderPaths()
    {
        string largest = Path.Combine(ShippedLadderFolder, ShippedLadderFiles[^1]);
        if (ShippedModels.TryFind(largest, out var looked) is not string found)
            throw new MediatorDiTException($"the shipped ladder models/{ShippedLadderFolder}/ was not found (looked for {string.Join(", ", looked)}); pass the ladder's weight files (m4, m16, m64), set {ShippedModels.ModelsDirVariable}, or train one with `mdit train --config configs/fashion-mnist/shared.json`.");
        string folder = Path.GetDirectoryName(found)!;
        var paths = ShippedLadderFiles.Select(f => Path.Combine(folder, f)).ToArray();
        foreach (var path in paths)
            if (!File.Exists(path))
                throw new MediatorDiTException($"the shipped ladder in {folder} is incomplete: {Path.GetFileName(path)} is missing (expected {string.Join(", ", ShippedLadderFiles)}).");
        return paths;
    }

    /// <summary>
    /// Models already in memory (cheapest first), with an optional VAE and stored schedule; on a device other than the
    /// cpu, <paramref name="deviceModels"/> evaluates them (see <see cref="PipelineLoadOptions.DeviceModels"/>).
    /// </summary>
    public static DiffusionPipeline FromModels(IReadOnlyList<SiTModel> models, VaePipeline? vae = null, ScheduleFile? schedule = null,
        ComputeContext? compute = null, IDeviceModelFactory? deviceModels = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        if (models.Any(m => m is null)) throw new MediatorDiTException("a pipeline's models must not be null.");
        return new DiffusionPipeline(models.ToArray(), models.Select((_, i) => $"model {i + 1}").ToArray(), vae, schedule, null, compute,
            deviceModels);
    }

    /// <summary>The short name of each model: "full" or "m16".</summary>
    public IReadOnlyList<string> ModelNames => _models.Select(m => AttentionKinds.ShortName(m.Config)).ToArray();

    /// <summary>Guidance at the options' scale on the channels they ask for (null at scale 1).</summary>
    public ClassifierFreeGuidance? GuidanceFor(GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return ClassifierFreeGuidance.Choose(options.GuidanceScale, options.GuideAllChannels, Config.InChannels);
    }

    /// <summary>The ladder of the pipeline's models under the options' guidance.</summary>
    public ModelLadder LadderFor(GenerationOptions options) => ModelLadder.FromModels(_models, GuidanceFor(options), DeviceModels);

    /// <summary>The sampler the options ask for, checked against the model family.</summary>
    public ISampler CreateSampler(GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        bool dit = Config.Family == ModelFamily.DiT;
        var kind = options.Sampler == SamplerKind.Auto ? (dit ? SamplerKind.Ancestral : SamplerKind.Sde) : options.Sampler;
        if (dit && kind is SamplerKind.Sde or SamplerKind.Ode)
            throw new MediatorDiTException($"a DiT model is sampled with DiT's diffusion (ancestral or DDIM), not SiT's {kind.ToString().ToUpperInvariant()}.");
        if (!dit && kind is SamplerKind.Ancestral or SamplerKind.Ddim)
            throw new MediatorDiTException($"{(kind == SamplerKind.Ddim ? "DDIM" : "ancestral sampling")} applies to DiT checkpoints (Gaussian diffusion); SiT models sample with the SDE or ODE.");
        int steps = options.Steps ?? (dit ? GenerationOptions.DefaultDiffusionSteps : GenerationOptions.DefaultTransportSteps);
        var transport = new Transport();
        return kind switch
        {
            SamplerKind.Sde => new SdeSampler(transport, new SdeSamplerOptions
            {
                Method = options.SdeMethod, DiffusionForm = options.DiffusionForm, LastStep = options.LastStep,
                LastStepSize = options.LastStepSize, NumSteps = steps,
            }.Validate()),
            SamplerKind.Ode => new OdeSampler(transport, new OdeSamplerOptions { Method = options.OdeMethod, NumSteps = steps }.Validate()),
            SamplerKind.Ddim => DiffusionSampler.DdimSteps(steps, options.Eta, Config.LearnSigma),
            _ => DiffusionSampler.Ancestral(steps, Config.LearnSigma),
        };
    }

    /// <summary>
    /// The model schedule the options ask for (null for a single model) and a description of it and of where
    /// its settings came from (the options, the ladder's schedule.json or the defaults).
    /// </summary>
    public (IModelSchedule? Schedule, string Description) CreateSchedule(GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var inv = CultureInfo.InvariantCulture;
        if (_models.Length == 1) return (null, "one model");
        switch (options.Schedule)
        {
            case ScheduleChoice.Single single:
            {
                int index = single.Index < 0 ? _models.Length + single.Index : single.Index;
                if (index < 0 || index >= _models.Length)
                    throw new MediatorDiTException($"model index {single.Index} is outside the ladder of {_models.Length} models.");
                return (FixedModelSchedule.Only(index), $"{ModelNames[index]} alone");
            }
            case ScheduleChoice.Fixed fixedChoice:
                return (new FixedModelSchedule(fixedChoice.SwitchFractions.ToArray()),
                    "fixed at " + string.Join(",", fixedChoice.SwitchFractions.Select(f => f.ToString("R", inv))) + " of the steps");
            case ScheduleChoice.Dynamic dynamic:
            {
                var ratios = dynamic.Ratios ?? StoredSchedule?.Ratios ?? AdaptiveModelSchedule.DefaultRatios(_models.Length);
                int first = dynamic.First ?? StoredSchedule?.First ?? AdaptiveModelSchedule.DefaultReferenceSteps;
                bool fromFile = StoredSchedule is not null && (dynamic.Ratios is null || dynamic.First is null);
                bool fromOptions = dynamic.Ratios is not null || dynamic.First is not null;
                string source = fromFile ? (fromOptions ? $"options over {StoredSchedulePath}" : StoredSchedulePath!) : fromOptions ? "options" : "defaults";
                var schedule = new AdaptiveModelSchedule(ratios, first, dynamic.Distance, dynamic.Scope);
                return (schedule, string.Create(inv,
                    $"dynamic, ratios {string.Join(",", ratios.Select(r => r.ToString("R", inv)))}, first {first}{(dynamic.Scope == DecisionScope.PerSample ? ", per sample" : "")} ({source})"));
            }
            default:
                throw new MediatorDiTException("the schedule must be given (ScheduleChoice.Default for the dynamic rule).");
        }
    }

    /// <summary>Generates every image of this rank and returns them with the run record.</summary>
    public GenerationResult Generate(GenerationOptions? options = null, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var images = new List<Tensor>();
        var samples = new List<Tensor>();
        var record = Run(options ?? new GenerationOptions(), batch =>
        {
            images.Add(batch.Images);
            samples.Add(batch.Samples);
        }, progress, cancellationToken);
        return new GenerationResult(Tensor.ConcatBatches(images), Tensor.ConcatBatches(samples), record);
    }

    /// <summary>
    /// Generates this rank's images batch by batch, handing each to <paramref name="onBatch"/> as it is done (so a
    /// run of 50,000 images holds one batch at a time), and returns the run record. Everything is validated before
    /// the first network call.
    /// </summary>
    public GenerationRecord Run(GenerationOptions options, Action<GeneratedBatch> onBatch, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(onBatch);
        options = options.Validate();
        using var turn = TakeTurn();
        using var compute = Compute.Use();
        var guidance = GuidanceFor(options);
        var ladder = ModelLadder.FromModels(_models, guidance, DeviceModels);
        var sampler = CreateSampler(options);
        var (schedule, scheduleText) = CreateSchedule(options);
        int total = options.TotalImages;
        int[] mine = Enumerable.Range(0, total).Where(i => i % options.WorldSize == options.Rank).ToArray();
        int[] allLabels = Enumerable.Range(0, total).Select(i => options.LabelOf(i, NumClasses)).ToArray();
        ladder.ValidateLabels(allLabels);
        if (sampler is DiffusionSampler)
            foreach (int label in allLabels)
                if ((uint)label >= (uint)NumClasses)
                    throw new MediatorDiTException($"class {label} is outside the model's 0..{NumClasses - 1}.");
        if (options.Decode && !IsPixelSpace && Vae is null)
            throw new MediatorDiTException($"the model makes {Config.InChannels}-channel latents; give the pipeline a VAE to decode them into images, or set Decode = false.");
        if (options.NoiseDraws is not null && sampler.DrawCount == 0)
            throw new MediatorDiTException($"{options.NoiseDrawsName} replays per-step draws, but the {sampler.Description} sampler takes none (give the starting noise instead).");
        if (options.InitialNoise is { } given)
        {
            ladder.ValidateInitialNoise(given, mine.Length);
        }
        // Replayed z or replayed draws cover this rank's whole run: one batch.
        int batchSize = options.InitialNoise is not null || options.NoiseDraws is not null ? Math.Max(1, mine.Length) : options.BatchSize;
        var replay = options.NoiseDraws is null ? null : new ReplayNoiseSource(options.NoiseDraws, options.NoiseDrawsName);

        var clock = Stopwatch.StartNew();
        var records = new List<ImageRecord>(mine.Length);
        double flopsSum = 0, largestSum = 0;
        double largestPerEvaluation = ladder.FlopsPerImage[^1];
        for (int start = 0; start < mine.Length; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int[] indices = mine.Skip(start).Take(batchSize).ToArray();
            int[] labels = indices.Select(i => allLabels[i]).ToArray();
            var indexed = new IndexedNoiseSource(options.Seed, indices);
            var z = options.InitialNoise ?? indexed.InitialNoise(ladder.SampleShape.ToArray());
            int done = start;
            var stepProgress = progress is null ? null : new SyncProgress<SamplingProgress>(p =>
                progress.Report(new GenerationProgress(done, mine.Length, indices.Length, p.StepsDone, p.StepCount, p.MeanFlopsPerImage / 1e9)
                {
                    Indices = indices,
                    ModelPerImage = p.ModelPerSample?.ToArray() ?? [],
                    Preview = PreviewOf(p, indices.Length, options, cancellationToken),
                }));
            var result = sampler.Sample(ladder, z, labels, replay ?? (INoiseSource)indexed, schedule, progress: stepProgress,
                cancellationToken: cancellationToken);
            var decoded = options.Decode && Vae is not null ? Vae.DecodeLatents(result.Samples, cancellationToken) : result.Samples;
            var batchRecords = new ImageRecord[indices.Length];
            for (int k = 0; k < indices.Length; k++)
            {
                var firstSteps = Enumerable.Range(0, _models.Length).Select(m => result.Usage.FirstStepOf(m, k)).ToArray();
                double flops = result.Usage.FlopsPerImage[k];
                batchRecords[k] = new ImageRecord(indices[k], labels[k], firstSteps, flops / 1e9);
                flopsSum += flops;
                largestSum += largestPerEvaluation * result.Usage.Evaluations;
            }
            records.AddRange(batchRecords);
            onBatch(new GeneratedBatch(indices, labels, decoded, result.Samples, batchRecords, result.Usage));
        }
        int count = Math.Max(1, mine.Length);
        return new GenerationRecord
        {
            Models = Sources,
            Family = Config.Family.ToString(),
            Mediators = _models.Select(m => AttentionKinds.MediatorCount(m.Config)).ToArray(),
            Sampler = sampler.Description,
            Steps = sampler.StepCount,
            Schedule = scheduleText,
            GuidanceScale = options.GuidanceScale,
            GuidedChannels = guidance?.Recorded,
            ImageSize = ImageSize,
            Seed = options.Seed,
            Rank = options.Rank,
            WorldSize = options.WorldSize,
            ImageCount = mine.Length,
            WallSeconds = clock.Elapsed.TotalSeconds,
            MeanGflopsPerImage = flopsSum / count / 1e9,
            LargestModelGflopsPerImage = largestSum / count / 1e9,
            Images = records,
        };
    }

    /// <summary>
    /// Waits until no other thread is running this pipeline, then holds it until disposed. A call from inside a run's
    /// own callback (on the running thread) would overwrite the networks' scratch mid-step, so it is refused.
    /// </summary>
    private Lock.Scope TakeTurn()
    {
        if (_runGate.IsHeldByCurrentThread)
            throw new MediatorDiTException("a pipeline run cannot start from inside another run's batch or progress callback on the same pipeline; start it after that run returns.");
        return _runGate.EnterScope();
    }

    /// <summary>The batch's first B state rows as images (B, C, H, W) on the steps the options ask for, else null.</summary>
    private Tensor? PreviewOf(SamplingProgress progress, int batch, GenerationOptions options, CancellationToken cancellationToken)
    {
        if (options.PreviewEvery == 0 || progress.State is not { } state) return null;
        if (progress.StepsDone % options.PreviewEvery != 0 && progress.StepsDone != progress.StepCount) return null;
        var shape = (int[])state.Shape.Clone();
        shape[0] = batch;
        var samples = new Tensor(shape);
        state.Span[..samples.Length].CopyTo(samples.Span);
        return options.Decode && Vae is not null ? Vae.DecodeLatents(samples, cancellationToken) : samples;
    }

    /// <summary>One call of each model on one sample, so timed runs that follow do not include JIT compilation.</summary>
    public void WarmUp(GenerationOptions? options = null)
    {
        using var turn = TakeTurn();
        using var compute = Compute.Use();
        var ladder = LadderFor(options ?? new GenerationOptions());
        if (Config.Family == ModelFamily.DiT) return;
        var shape = ladder.SampleShape;
        int rows = ladder.RowsPerSample;
        var x = new Tensor(rows, shape[0], shape[1], shape[2]);
        float[] t = Enumerable.Repeat(0.5f, rows).ToArray();
        int[] y = Enumerable.Repeat(0, rows).ToArray();
        foreach (var stage in ladder.Stages) stage.Evaluate(x, t, y);
    }


}
