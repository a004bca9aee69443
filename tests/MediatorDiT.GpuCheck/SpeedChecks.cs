using System.Diagnostics;
using System.Text.Json.Nodes;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Cuda.Training;
using MediatorDiT.Diffusion;
using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.GpuCheck;

/// <summary>
/// The speed cases, each timed after a warm-up (kernels compiled, buffers allocated) with the accelerator synchronised
/// around every timed run; the median of the repeats. FLOPs are the library's <see cref="FlopCounter"/> count of
/// multiply-accumulates (linear layers, attention products, convolutions) times 2, a training step counting 3 forwards
/// (backward = 2 x forward). Weights are random (N(0, 0.02)): speed does not depend on them.
/// </summary>
public static class SpeedChecks
{
    /// <summary>The options the speed cases share.</summary>
    /// <param name="Quick">Tiny configs and 2 runs per case (the CPU accelerator in CI).</param>
    /// <param name="SampleSteps">SDE steps actually run in the sampling case (the rate is extrapolated to 250).</param>
    /// <param name="SampleBatch">Images per sampling batch.</param>
    /// <param name="Precision">The device's matrix products: bf16 inputs with fp32 accumulation, or fp32.</param>
    public sealed record Options(bool Quick, int SampleSteps, int SampleBatch, DevicePrecision Precision)
    {
        /// <summary>Timed repeats after the warm-up.</summary>
        public int Repeats => Quick ? 1 : 3;
    }

    /// <summary>
    /// One training step (forward keeping activations, loss, backward, gradient norm, AdamW, EMA) of SiT-XL/2 with full
    /// attention on 32x32x4 latents at batch 64, in the options' precision, through <see cref="DeviceTrainingBackend"/>.
    /// </summary>
    /// <param name="device">The accelerator.</param>
    /// <param name="options">Quick or full.</param>
    /// <param name="entry">Receives times, rates and memory.</param>
    /// <param name="operandsFromProducers">
    /// False: the bf16 products' operands rounded in passes of their own (the reference with the same bits), to measure
    /// what writing them from the producing kernels saves; the tile sweep and the products' replay run only with true.
    /// </param>
    /// <param name="fusedAttention">
    /// True: full attention's core as the fused tensor-core kernels, forward and backward, with no P kept
    /// (<see cref="DeviceWorkload.FullAttention"/>), to measure them against the tiles, where they run (elsewhere, as on
    /// the CPU accelerator's 4-lane warps, the tiles in their place: the same bits); no sweep or replay then either.
    /// </param>
    public static void Training(CheckDevice device, Options options, JsonObject entry, bool operandsFromProducers = true, bool fusedAttention = false)
    {
        var config = options.Quick ? Tiny(mediators: 0) : ModelRegistry.Get("SiT-XL/2", 256);
        int batch = options.Quick ? 2 : 64;
        bool fused = fusedAttention && options.Precision == DevicePrecision.Bf16 && Cuda.Kernels.KernelSet.FlashKernelsRunOn(device.Accelerator);
        long? before = device.MemoryInUse();
        using var work = new DeviceWorkload(device.Accelerator, config, batch, options.Precision, trainingBatches: 1 + options.Repeats)
        {
            OperandsFromProducers = operandsFromProducers,
            RecordsProducts = operandsFromProducers && !fusedAttention,
            FullAttention = fused ? FullAttentionCore.Fused : FullAttentionCore.Tiles,
        };
        entry["bf16_operands"] = operandsFromProducers ? "written by their producing kernels" : "rounded in passes of their own";
        entry["attention_core"] = fused ? "fused tensor-core kernels, no P kept" : "tiles of products";
        double loss = double.NaN;
        var times = DeviceTiming.Time(device.Accelerator, 1, options.Repeats, run => loss = work.TrainStep(run).Loss);

        double macs = FlopCounter.Count(config).PerImage * batch;
        double seconds = DeviceTiming.Median(times);
        double flops = 2 * 3 * macs / seconds;
        entry["model"] = Describe(config);
        entry["precision"] = DevicePrecisions.Name(options.Precision);
        entry["batch"] = batch;
        entry["warmup_steps"] = 1;
        entry["step_seconds"] = new JsonArray(times.Select(t => (JsonNode)Math.Round(t, 5)).ToArray());
        entry["median_step_seconds"] = seconds;
        entry["images_per_second"] = CheckReport.Number(batch / seconds);
        entry["last_loss"] = CheckReport.Number(loss);
        entry["forward_flops_per_image"] = 2 * FlopCounter.Count(config).PerImage;
        entry["flops_per_step"] = 2 * 3 * macs;
        entry["achieved_flops_per_second"] = CheckReport.Number(flops);
        entry["mfu_of_fp32_peak"] = CheckReport.Number(flops / device.Peaks.Fp32);
        entry["mfu_of_bf16_peak"] = CheckReport.Number(flops / device.Peaks.Bf16);
        Memory(device, before, entry);
        var profile = new DeviceStageProfile(device.Accelerator);
        work.ProfileTrainStep(profile, 1);
        entry["profile"] = Profile(profile, seconds);
        if (fusedAttention) entry["fused_kernels_run"] = work.Attention!.FusesBackward(config) && work.Attention.Fuses(config);
        if (!operandsFromProducers || fusedAttention) return;
        entry["tile_sweep"] = TileSweep(device, work, options, config, batch, run => work.TrainStep(run));
        entry["products"] = ProductChecks.Replay(device, work.RecordProducts(() => work.TrainStep(0)), options.Quick);
    }

    /// <summary>
    /// The workload's call timed again with full attention's tiles of other sizes (<see cref="AttentionProducts.TileFloats"/>):
    /// tiles small enough to stay in a GPU's L2 cache between the product that writes them and the kernels that read them,
    /// against the default's fewer, larger launches. The default is restored after.
    /// </summary>
    private static JsonObject TileSweep(CheckDevice device, DeviceWorkload work, Options options, ModelConfig config, int batch, Action<int> run)
    {
        var attention = work.Attention ?? throw new InvalidOperationException("the workload has not built its network yet.");
        long original = attention.TileFloats, perItem = (long)config.NumTokens * config.NumTokens;
        // Quick: one item per tile (the tiny model's whole batch fits the default tile; a row per tile would cost the
        // CPU accelerator many launches, and AttentionProductsTests covers split rows).
        long[] tiles = options.Quick ? [perItem] : [1L << 23, 1L << 22, 1L << 21];
        var rows = new JsonArray();
        try
        {
            foreach (long tile in tiles)
            {
                attention.TileFloats = tile;
                double seconds = DeviceTiming.Median(DeviceTiming.Time(device.Accelerator, 1, options.Repeats, run));
                var (_, items, _, queryRows) = attention.Tiling(batch * config.NumHeads, config.NumTokens).First();
                rows.Add(new JsonObject
                {
                    ["tile_floats"] = tile, ["tile_megabytes_fp32"] = Math.Round(4.0 * items * queryRows * config.NumTokens / (1 << 20), 2),
                    ["items_per_tile"] = items, ["query_rows_per_tile"] = queryRows,
                    ["median_seconds"] = seconds, ["images_per_second"] = CheckReport.Number(batch / seconds),
                });
            }
        }
        finally
        {
            attention.TileFloats = original;
        }
        return new JsonObject
        {
            ["note"] = $"the same call with full attention's logits made in tiles of at most tile_floats; 1 warm-up, median of {options.Repeats}",
            ["default_tile_floats"] = original,
            ["tiles"] = rows,
        };
    }

    /// <summary>
    /// Guided sampling (scale 4 on the first 3 channels) of a 3-model SiT-XL/2 mediator ladder (4, 16, 64 mediators,
    /// switching at 1/3 and 2/3 of the steps) with the SDE (Euler-Maruyama, one network call per step), through
    /// <see cref="DiffusionPipeline"/> with <see cref="DeviceModelFactory"/>; <see cref="Options.SampleSteps"/> steps
    /// run and the time extrapolated to 250.
    /// </summary>
    /// <param name="device">The accelerator.</param>
    /// <param name="options">Quick or full, steps and batch.</param>
    /// <param name="entry">Receives times, rates and memory.</param>
    public static void Sampling(CheckDevice device, Options options, JsonObject entry)
    {
        int[] mediators = options.Quick ? [1, 4, 16] : [4, 16, 64];
        var models = mediators.Select(m => new SiTModel(options.Quick ? Tiny(m) : ModelRegistry.Get("SiT-XL/2", 256, mediators: m))).ToArray();
        foreach (var model in models) DeviceWorkload.Randomise(model.Parameters);
        long? before = device.MemoryInUse();
        using var factory = new DeviceModelFactory(device.Accelerator, precision: options.Precision);
        var pipeline = DiffusionPipeline.FromModels(models, compute: ComputeContext.Default with { Device = ComputeDevice.Cuda }, deviceModels: factory);
        GenerationOptions Run(int steps) => new()
        {
            Sampler = SamplerKind.Sde, Steps = steps, NumImages = options.SampleBatch, BatchSize = options.SampleBatch, Seed = 7,
            GuidanceScale = 4f, Schedule = new ScheduleChoice.Fixed([1.0 / 3, 2.0 / 3]), Decode = false,
        };
        pipeline.Generate(Run(3)); // warm-up: every model serves a step
        device.Accelerator.Synchronize();
        var watch = Stopwatch.StartNew();
        var result = pipeline.Generate(Run(options.SampleSteps));
        device.Accelerator.Synchronize();
        double seconds = watch.Elapsed.TotalSeconds;
        double perStep = seconds / options.SampleSteps;
        double macs = result.Record.Images.Sum(i => i.Gflops) * 1e9;
        double finite = result.Samples.Span.ToArray().Count(float.IsFinite) / (double)result.Samples.Length;

        entry["model"] = Describe(models[0].Config) + $", ladder of {string.Join(", ", mediators)} mediators";
        entry["precision"] = DevicePrecisions.Name(options.Precision);
        entry["weights"] = "random N(0, 0.02)";
        entry["sampler"] = "SDE Euler-Maruyama, one network call per step (both guidance halves in one doubled batch), guidance 4 on 3 channels, fixed switches at 1/3 and 2/3";
        entry["batch"] = options.SampleBatch;
        entry["steps_run"] = options.SampleSteps;
        entry["seconds_run"] = seconds;
        entry["seconds_per_step"] = perStep;
        entry["extrapolated_to_steps"] = 250;
        entry["extrapolated_seconds"] = perStep * 250;
        entry["images_per_second"] = CheckReport.Number(options.SampleBatch / (perStep * 250));
        entry["achieved_flops_per_second"] = CheckReport.Number(2 * macs / seconds);
        entry["finite_fraction"] = finite;
        entry["note"] = options.SampleSteps == 250 ? "all 250 steps run" : $"{options.SampleSteps} steps run, time per step extrapolated to 250";
        Memory(device, before, entry);
    }

    /// <summary>
    /// The forward of SiT-S/2 at 4,096 tokens (128x128x4 latents, patch 2) at batch 8 through
    /// <see cref="DeviceModelFunction"/>, with 64 mediators or full attention.
    /// </summary>
    /// <param name="device">The accelerator.</param>
    /// <param name="options">Quick or full.</param>
    /// <param name="mediators">64 (quick: 4), or 0 for full attention.</param>
    /// <param name="entry">Receives times, rates and memory.</param>
    public static void LongForward(CheckDevice device, Options options, int mediators, JsonObject entry)
    {
        var config = options.Quick
            ? Tiny(mediators == 0 ? 0 : 4) with { InputSize = 16 }
            : ModelRegistry.Get("SiT-S/2", 1024, mediators: mediators);
        int batch = options.Quick ? 2 : 8;
        long? before = device.MemoryInUse();
        using var work = new DeviceWorkload(device.Accelerator, config, batch, options.Precision);
        Tensor? output = null;
        var times = DeviceTiming.Time(device.Accelerator, 1, options.Repeats, _ => output = work.Forward());
        double seconds = DeviceTiming.Median(times);
        double macs = FlopCounter.Count(config).PerImage * batch;
        entry["model"] = Describe(config);
        entry["precision"] = DevicePrecisions.Name(options.Precision);
        entry["tokens"] = config.NumTokens;
        entry["batch"] = batch;
        entry["forward_seconds"] = new JsonArray(times.Select(s => (JsonNode)Math.Round(s, 5)).ToArray());
        entry["median_forward_seconds"] = seconds;
        entry["images_per_second"] = CheckReport.Number(batch / seconds);
        entry["achieved_flops_per_second"] = CheckReport.Number(2 * macs / seconds);
        entry["finite_fraction"] = output!.Span.ToArray().Count(float.IsFinite) / (double)output.Length;
        Memory(device, before, entry);
        var profile = new DeviceStageProfile(device.Accelerator);
        work.ProfileForward(profile);
        entry["profile"] = Profile(profile, seconds);
        if (mediators != 0) return;
        entry["tile_sweep"] = TileSweep(device, work, options, config, batch, _ => work.Forward());
        entry["fused_forward"] = FusedForward(device, work, options, output!, seconds);
    }

    /// <summary>
    /// The forward timed again with full attention's core as the fused tensor-core kernel
    /// (<see cref="AttentionProducts.FusedForward"/>, off by default) where it runs, and its output against the tiles':
    /// max |fused - tiles| / max(1, max |tiles|), within the library's bf16 bound (the two round P at different points).
    /// The default is restored after.
    /// </summary>
    private static JsonObject FusedForward(CheckDevice device, DeviceWorkload work, Options options, Tensor tiles, double tilesSeconds)
    {
        var attention = work.Attention ?? throw new InvalidOperationException("the workload has not built its network yet.");
        bool original = attention.FusedForward;
        Tensor? fused = null;
        double seconds;
        try
        {
            attention.FusedForward = true;
            seconds = DeviceTiming.Median(DeviceTiming.Time(device.Accelerator, 1, options.Repeats, _ => fused = work.Forward()));
        }
        finally
        {
            attention.FusedForward = original;
        }
        double scale = 1, worst = 0;
        foreach (float x in tiles.Span) scale = Math.Max(scale, Math.Abs(x));
        for (int i = 0; i < tiles.Length; i++) worst = Math.Max(worst, Math.Abs((double)fused!.Span[i] - tiles.Span[i]));
        bool runs = attention.Fuses(work.Config);
        double difference = worst / scale;
        return new JsonObject
        {
            ["note"] = $"the same forward with full attention's core as one fused kernel (mma.sync bf16, logits in registers); 1 warm-up, median of {options.Repeats}; difference: max |fused - tiles| / max(1, max |tiles|)",
            ["kernel_runs"] = runs,
            ["median_seconds"] = seconds,
            ["images_per_second"] = CheckReport.Number(work.Batch / seconds),
            ["speedup_over_tiles"] = CheckReport.Number(tilesSeconds / seconds),
            ["difference_from_tiles"] = CheckReport.Number(difference),
            ["bound"] = ParityChecks.Bf16Tolerance,
            ["pass"] = double.IsFinite(difference) && (runs ? difference > 0 && difference <= ParityChecks.Bf16Tolerance : difference == 0),
        };
    }

    /// <summary>
    /// A profiled run's stages, longest first, with their FLOP rates where products were counted, and the totals of the
    /// matrix products, their bf16 rounding, the attention cores and everything else.
    /// </summary>
    private static JsonObject Profile(DeviceStageProfile profile, double unprofiledSeconds)
    {
        double total = profile.TotalSeconds;
        double Sum(Func<string, bool> pick) => profile.Stages.Where(s => pick(s.Name)).Sum(s => s.Seconds);
        double products = Sum(n => n.EndsWith(": product", StringComparison.Ordinal));
        double productFlops = profile.Stages.Where(s => s.Name.EndsWith(": product", StringComparison.Ordinal)).Sum(s => s.Flops);
        double rounding = Sum(n => n.EndsWith(": bf16 rounding", StringComparison.Ordinal));
        double cores = Sum(n => n.EndsWith("attention core", StringComparison.Ordinal));
        var stages = new JsonArray(profile.Stages.OrderByDescending(s => s.Seconds).Select(s => (JsonNode)new JsonObject
        {
            ["stage"] = s.Name, ["seconds"] = Math.Round(s.Seconds, 6), ["share"] = Math.Round(total > 0 ? s.Seconds / total : 0, 4), ["calls"] = s.Calls,
            ["flops"] = s.Flops > 0 ? s.Flops : null, ["flops_per_second"] = s.Flops > 0 && s.Seconds > 0 ? CheckReport.Number(s.Flops / s.Seconds) : null,
        }).ToArray());
        return new JsonObject
        {
            ["note"] = "one run with the accelerator synchronised at every stage boundary (DeviceStageProfile): wall time per stage; the waits make it slower than the unprofiled runs",
            ["profiled_seconds"] = total,
            ["unprofiled_median_seconds"] = unprofiledSeconds,
            ["matrix_products_seconds"] = products,
            ["matrix_products_flops"] = productFlops,
            ["matrix_products_flops_per_second"] = products > 0 ? CheckReport.Number(productFlops / products) : null,
            ["bf16_rounding_seconds"] = rounding,
            ["attention_cores_seconds"] = cores,
            ["everything_else_seconds"] = total - products - rounding - cores,
            ["stages"] = stages,
        };
    }

    /// <summary>A tiny SiT for --quick: 8x8x4 input, patch 2, hidden 32, depth 1, 2 heads, 10 classes, learn_sigma.</summary>
    private static ModelConfig Tiny(int mediators) => AttentionKinds.WithMediators(new ModelConfig
    {
        InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 1, NumHeads = 2, MlpRatio = 2.0, NumClasses = 10,
        LearnSigma = true,
    }, mediators == 0 ? null : mediators);

    private static string Describe(ModelConfig c) =>
        $"{c.Family} hidden {c.HiddenSize} depth {c.Depth} heads {c.NumHeads} patch {c.PatchSize}, {c.InputSize}x{c.InputSize}x{c.InChannels} latents ({c.NumTokens} tokens), "
        + (c.Attention == AttentionKind.Full ? "full attention" : $"{c.MediatorNum} mediators");

    /// <summary>
    /// The card's memory in use after the case (its buffers are allocated once and still held) above the level before it;
    /// null on the CPU accelerator.
    /// </summary>
    private static void Memory(CheckDevice device, long? before, JsonObject entry)
    {
        long? after = device.MemoryInUse();
        entry["device_memory_used_bytes"] = after is long a && before is long b ? a - b : null;
        entry["device_memory_note"] = device.IsCuda
            ? "cuMemGetInfo (total - free) after the timed runs minus before the case: the case's buffers (allocated once and kept), kernels and cuBLAS workspace"
            : "not measurable on the CPU accelerator";
    }
}
