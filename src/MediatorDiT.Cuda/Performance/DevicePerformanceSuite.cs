using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Evaluation.Performance;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Performance;

/// <summary>
/// The models and sizes the device bench times: a forward pair (full attention and mediators) and its training steps,
/// a long-sequence forward pair, and the square product size of the yardstick.
/// </summary>
/// <param name="Short">The full-attention model of the forward and training cases.</param>
/// <param name="ShortMediator">The same model with mediator attention.</param>
/// <param name="ForwardBatch">Images per forward.</param>
/// <param name="TrainBatch">Images per training step.</param>
/// <param name="Long">The full-attention model of the long-sequence forward.</param>
/// <param name="LongMediator">The same with mediator attention.</param>
/// <param name="LongBatch">Images per long forward.</param>
/// <param name="GemmSize">n of the n x n x n product yardstick.</param>
public sealed record DeviceBenchCases(ModelConfig Short, ModelConfig ShortMediator, int ForwardBatch, int TrainBatch,
    ModelConfig Long, ModelConfig LongMediator, int LongBatch, int GemmSize)
{
    /// <summary>
    /// The CPU bench's cases (docs/PERFORMANCE.md), so the two reports compare line by line: SiT-S/2 at 256 tokens with
    /// full attention and 16 mediators (forward batch 4, training batch 8), at 4,096 tokens with full attention and 64
    /// mediators (batch 1), and 1024^3 products.
    /// </summary>
    public static DeviceBenchCases Standard => new(
        ModelRegistry.Get("SiT-S/2", 256), ModelRegistry.Get("SiT-S/2", 256, mediators: 16), 4, 8,
        ModelRegistry.Get("SiT-S/2", 1024), ModelRegistry.Get("SiT-S/2", 1024, mediators: 64), 1, 1024);
}

/// <summary>
/// `mdit bench --device cuda[:N]`: the CPU bench's timed cases (<see cref="PerformanceSuite"/>) on an accelerator, in
/// the same <see cref="PerformanceReport"/>: images/s and achieved FLOP/s of the forward (through
/// <see cref="Sampling.DeviceModelFunction"/>) and the training step (through <see cref="Training.DeviceTrainingBackend"/>),
/// each against the device's own product rate at the same precision (the yardstick, as SGEMM is on the CPU) and the
/// vendor's peak where <see cref="DevicePeaks"/> knows the card. Cases compared with each other are timed interleaved,
/// the accelerator synchronised after every run; figures are medians. The CPU bench's memory figures (resident
/// memory, managed allocations) and per-operation breakdown describe the CPU kernels and are not measured here.
/// </summary>
public static class DevicePerformanceSuite
{
    /// <summary>Times <paramref name="cases"/> (default <see cref="DeviceBenchCases.Standard"/>) on <paramref name="accelerator"/>.</summary>
    /// <param name="accelerator">Where the cases run (stays the caller's).</param>
    /// <param name="deviceName">The device in words, for the report (e.g. "cuda:0 (NVIDIA H200)").</param>
    /// <param name="precision">The linear layers' matrix products and the yardstick's.</param>
    /// <param name="options">Quick (fewer rounds) and Large (the long-sequence pair); the rest describes CPU work.</param>
    /// <param name="progress">Receives a line as each part starts.</param>
    /// <param name="cancel">Stops between runs.</param>
    /// <param name="cases">The models and sizes; null: the CPU bench's.</param>
    /// <param name="fullAttention">How the full-attention cases run their core (<see cref="FullAttentionCore"/>).</param>
    /// <param name="compareCores">
    /// Also time each full-attention case on the other core, interleaved with the chosen one, for the fused core's speedup
    /// over the tiles on this device and model (<see cref="PerformanceReport.FusedSpeedups"/>); needs a device that runs the
    /// fused kernels and bf16 products.
    /// </param>
    /// <exception cref="MediatorDiTException">The fused full-attention core was asked for (or a comparison) and cannot run here.</exception>
    public static PerformanceReport Run(Accelerator accelerator, string deviceName, DevicePrecision precision, PerformanceOptions options,
        IProgress<string>? progress = null, CancellationToken cancel = default, DeviceBenchCases? cases = null,
        FullAttentionCore fullAttention = FullAttentionCore.Tiles, bool compareCores = false)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        ArgumentNullException.ThrowIfNull(deviceName);
        ArgumentNullException.ThrowIfNull(options);
        var c = cases ?? DeviceBenchCases.Standard;
        var fusedAsked = compareCores ? FullAttentionCore.Fused : fullAttention;
        fusedAsked.Check(accelerator, precision);
        fusedAsked.Check(c.Short);
        if (options.Large) fusedAsked.Check(c.Long);
        var peak = DevicePeaks.For(accelerator.Name, precision);
        var report = new PerformanceReport
        {
            Threads = Math.Max(1, options.Threads),
            ProcessorCount = Environment.ProcessorCount,
            CpuFeatures = PerformanceSuite.CpuFeatures(),
            GemmBackend = accelerator is CudaAccelerator ? "cuBLAS" : "ILGPU GEMM kernels",
            Quick = options.Quick,
            Device = deviceName,
            Precision = DevicePrecisions.Name(precision),
            FullAttentionCore = fullAttention.Name(),
            OtherFullAttentionCore = compareCores ? fullAttention.Other().Name() : null,
            PeakGflops = peak?.FlopsPerSecond / 1e9,
            PeakDescription = peak?.Description,
            GemmSize = c.GemmSize,
        };
        int warmups = options.WarmUps, repeats = options.Repeats;

        progress?.Report($"GEMM {c.GemmSize}^3 ({report.Precision}) on {deviceName}");
        report.SgemmGflops = DeviceGemmRate.Measure(accelerator, c.GemmSize, precision, warmups, repeats, cancel) / 1e9;

        var other = compareCores ? fullAttention.Other() : (FullAttentionCore?)null;
        progress?.Report($"forward, {c.Short.NumTokens} tokens, batch {c.ForwardBatch}: full vs {AttentionKinds.MediatorCount(c.ShortMediator)} mediators{Versus(other)}");
        var t = TimeCases(report, accelerator, precision, fullAttention, other, c.Short, c.ShortMediator, c.ForwardBatch, warmups, repeats, cancel,
            training: false, withTokens: false);
        report.MediatorTimeRatio256 = DeviceTiming.Ratio(t[1], t[0]);
        report.MediatorFlopRatio256 = FlopCounter.Count(c.ShortMediator).PerImage / FlopCounter.Count(c.Short).PerImage;

        progress?.Report($"training step (forward, backward, AdamW, EMA), batch {c.TrainBatch}: full vs {AttentionKinds.MediatorCount(c.ShortMediator)} mediators{Versus(other)}");
        TimeCases(report, accelerator, precision, fullAttention, other, c.Short, c.ShortMediator, c.TrainBatch, warmups, repeats, cancel,
            training: true, withTokens: false);

        if (options.Large)
        {
            progress?.Report($"forward, {c.Long.NumTokens} tokens, batch {c.LongBatch}: full vs {AttentionKinds.MediatorCount(c.LongMediator)} mediators{Versus(other)}");
            var quick = options with { Quick = true }; // as the CPU bench: the long pair takes the quick rounds
            t = TimeCases(report, accelerator, precision, fullAttention, other, c.Long, c.LongMediator, c.LongBatch, quick.WarmUps, quick.Repeats, cancel,
                training: false, withTokens: true);
            report.Mediator4096Speedup = DeviceTiming.Ratio(t[0], t[1]);
        }
        return report;
    }

    /// <summary>
    /// The full-attention model on <paramref name="core"/> and the mediator model, and with <paramref name="other"/> the
    /// full-attention model on that core too, timed interleaved (forwards, or training steps); their cases added to
    /// <paramref name="report"/>, the other core's to <see cref="PerformanceReport.OtherCoreCases"/> with the fused
    /// core's speedup over the tiles. Returns the times: the chosen core's, the mediators', then the other core's.
    /// </summary>
    private static double[][] TimeCases(PerformanceReport report, Accelerator accelerator, DevicePrecision precision, FullAttentionCore core,
        FullAttentionCore? other, ModelConfig fullConfig, ModelConfig mediatorConfig, int batch, int warmups, int repeats, CancellationToken cancel,
        bool training, bool withTokens)
    {
        using var full = new DeviceWorkload(accelerator, fullConfig, batch, precision) { FullAttention = core };
        using var mediator = new DeviceWorkload(accelerator, mediatorConfig, batch, precision);
        using var otherFull = other is { } o ? new DeviceWorkload(accelerator, fullConfig, batch, precision) { FullAttention = o } : null;
        DeviceWorkload[] works = otherFull is null ? [full, mediator] : [full, mediator, otherFull];
        var t = DeviceTiming.Interleaved(accelerator, warmups, repeats, cancel,
            works.Select(w => training ? (Action)(() => w.TrainStep()) : () => w.Forward()).ToArray());
        string what = training ? "train step" : "forward";
        var fullCase = Case(report, what, full, t[0], training, withTokens);
        report.Cases.Add(fullCase);
        report.Cases.Add(Case(report, what, mediator, t[1], training, withTokens));
        if (otherFull is not null)
        {
            report.OtherCoreCases.Add(Case(report, what, otherFull, t[2], training, withTokens, $" {otherFull.FullAttention.Name()}"));
            report.FusedSpeedups[fullCase.Name] = FusedSpeedup(core, t[0], t[2]);
        }
        return t;
    }

    /// <summary>
    /// The fused core's speedup over the tiles from the chosen core's and the other core's times of the same rounds: the
    /// median over rounds of the tiles' time over the fused core's.
    /// </summary>
    internal static double FusedSpeedup(FullAttentionCore chosen, IReadOnlyList<double> chosenTimes, IReadOnlyList<double> otherTimes) =>
        chosen == FullAttentionCore.Fused ? DeviceTiming.Ratio(otherTimes, chosenTimes) : DeviceTiming.Ratio(chosenTimes, otherTimes);

    private static string Versus(FullAttentionCore? other) => other is { } o ? $", full attention also on the {o.Name()} core" : "";

    /// <summary>A case named as the CPU bench names it ("forward full", "train step m16", "forward m64 4096").</summary>
    private static CaseResult Case(PerformanceReport report, string what, DeviceWorkload work, double[] times, bool training, bool withTokens,
        string suffix = "")
    {
        var config = work.Config;
        int mediators = AttentionKinds.MediatorCount(config);
        double flops = training ? work.TrainFlops : work.ForwardFlops;
        string name = $"{what} {(mediators == 0 ? "full" : $"m{mediators}")}{(withTokens ? $" {config.NumTokens}" : "")}{suffix}";
        double seconds = DeviceTiming.Median(times);
        double gflops = flops / seconds / 1e9;
        return new CaseResult(name, config.NumTokens, mediators, work.Batch, training, seconds, work.Batch / seconds, gflops,
            gflops / report.SgemmGflops, report.PeakGflops is double peak ? gflops / peak : null);
    }
}
