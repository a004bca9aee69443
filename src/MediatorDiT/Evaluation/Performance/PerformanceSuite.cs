using System.Diagnostics;
using System.Runtime.Intrinsics;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation.Performance;

/// <summary>What <see cref="PerformanceSuite.Run"/> measures, and how long it may take.</summary>
/// <param name="Threads">threads for every figure except the 1-thread side of the scaling check</param>
/// <param name="Quick">3 timed rounds after 1 warm-up (else 11 after 2), and one XL step</param>
/// <param name="Large">the 4,096-token comparison and its peak memory (tens of seconds)</param>
/// <param name="XlMemory">the SiT-XL/2 sampling memory check (builds a 675M-parameter model)</param>
/// <param name="Breakdown">a per-operation time breakdown of each 256-token case</param>
/// <param name="Timings">false: only the memory figures</param>
public sealed record PerformanceOptions(int Threads, bool Quick = false, bool Large = true, bool XlMemory = true, bool Breakdown = false,
    bool Timings = true)
{
    // 11 rounds: single rounds of the same binary on the idle 2-core VM scatter by +-10%, and the median of
    // 5 still moved by about that much between runs.
    /// <summary>Timed rounds per case: <see cref="Rounds"/> when given, else 3 when quick and 11 otherwise.</summary>
    public int Repeats => Rounds ?? (Quick ? 3 : 11);
    /// <summary>Timed rounds per case in place of the quick or full count (at least 1); null: that count.</summary>
    public int? Rounds
    {
        get => _rounds;
        init => _rounds = value is null or >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "at least one timed round");
    }

    private readonly int? _rounds;
    /// <summary>Untimed rounds before timing: 1 when quick, else 2.</summary>
    public int WarmUps => Quick ? 1 : 2;
}

/// <summary>
/// The performance figures of docs/PERFORMANCE.md, measured side by side in one process: SGEMM 1024^3
/// as the yardstick, SiT-S/2 forward (batch 4) and training step (batch 8) at 256 tokens for full
/// attention and 16 mediators, mediator vs full wall time against their FLOPs ratio, 64 mediators vs
/// full attention at 4,096 tokens, 2-thread vs 1-thread scaling, and peak memory. Cases compared with
/// each other run interleaved (A B A B ...) so load from other processes hits both alike; figures are
/// medians. Shared by `mdit bench` and bench/MediatorDiT.Bench.
/// </summary>
public static class PerformanceSuite
{
    /// <summary>Measures what <paramref name="options"/> select (seconds to minutes) and returns the figures.</summary>
    /// <param name="options">Threads and which parts to run.</param>
    /// <param name="progress">Receives a line as each part starts.</param>
    /// <param name="cancel">Stops between cases.</param>
    public static PerformanceReport Run(PerformanceOptions options, IProgress<string>? progress = null, CancellationToken cancel = default)
    {
        int threads = Math.Max(1, options.Threads);
        var context = ComputeContext.Current with { Threads = threads };
        var oneThread = context with { Threads = 1 };
        using var compute = context.Use();
        {
            var report = new PerformanceReport
            {
                Threads = threads,
                ProcessorCount = Environment.ProcessorCount,
                CpuFeatures = CpuFeatures(),
                GemmBackend = Gemm.Backend.ToString(),
                OpenBlas = Gemm.OpenBlasAvailable,
                Quick = options.Quick,
            };
            // Memory first, while the process holds nothing else (freed heap pages are not always returned
            // to the OS, so a later start would count earlier cases).
            if (options.XlMemory)
            {
                progress?.Report("SiT-XL/2 sampling memory, 256 tokens, batch 1 (with guidance: 2 rows per call)");
                MeasureXlSampling(report, options.Quick ? 1 : 2, cancel);
            }
            if (options.Large)
            {
                progress?.Report("memory of a 4,096-token full-attention forward");
                MeasureLargeMemory(report);
            }
            if (!options.Timings) return report;
            report.TwoCoreCheck = SgemmRate.TwoCoreRatio(100);
            cancel.ThrowIfCancellationRequested();

            var s = ModelRegistry.Get("SiT-S/2", 256, 0);
            var m16 = ModelRegistry.Get("SiT-S/2", 256, 16);
            progress?.Report("SGEMM 1024^3 and SiT-S/2 forward, 256 tokens, batch 4: full vs 16 mediators");
            var fFull = new ModelWorkload(s, 4);
            var fMed = new ModelWorkload(m16, 4);
            // The yardstick is one of the interleaved cases, so it sees the same machine as the forwards.
            var sgemm = new SgemmRate.Sampler(1024, threads);
            var fwd = Interleaved(options, cancel, sgemm.Run, fFull.Forward, fMed.Forward);
            report.SgemmGflops = sgemm.Flops / fwd.Medians[0] / 1e9;
            report.Cases.Add(Case("forward full", s, 4, false, fwd.Medians[1], fFull.ForwardFlops, report.SgemmGflops));
            report.Cases.Add(Case("forward m16", m16, 4, false, fwd.Medians[2], fMed.ForwardFlops, report.SgemmGflops));
            report.MediatorTimeRatio256 = fwd.Ratio(2, 1);
            report.ForwardAllocatedBytes = AllocatedBy(fFull.Forward);
            report.MediatorForwardAllocatedBytes = AllocatedBy(fMed.Forward);
            report.MediatorFlopRatio256 = fMed.ForwardFlops / fFull.ForwardFlops;
            if (options.Breakdown)
            {
                report.SgemmThreadCpuGflops = SgemmRate.MeasureThreadCpu(repeats: options.Repeats);
                report.Breakdowns["forward full"] = Profile(fFull.Forward, options.Repeats);
                report.Breakdowns["forward m16"] = Profile(fMed.Forward, options.Repeats);
                report.ThreadCpuCases.Add(CpuCase("forward full", s, 4, false, report.Breakdowns["forward full"], fFull.ForwardFlops, report.SgemmThreadCpuGflops.Value));
                report.ThreadCpuCases.Add(CpuCase("forward m16", m16, 4, false, report.Breakdowns["forward m16"], fMed.ForwardFlops, report.SgemmThreadCpuGflops.Value));
            }

            progress?.Report("threads: forward full, batch 4, 1 thread vs " + threads);
            if (threads > 1)
            {
                void One() { using (oneThread.Use()) fFull.Forward(); }
                var scaling = Interleaved(options, cancel, One, fFull.Forward);
                report.ThreadSpeedup = scaling.Ratio(0, 1);
            }
            fFull = fMed = null!;

            progress?.Report("SiT-S/2 training step (forward, backward, AdamW), batch 8: full vs 16 mediators");
            var tFull = new ModelWorkload(s, 8);
            var tMed = new ModelWorkload(m16, 8);
            var train = Interleaved(options, cancel, tFull.TrainStep, tMed.TrainStep);
            report.Cases.Add(Case("train step full", s, 8, true, train.Medians[0], tFull.TrainFlops, report.SgemmGflops));
            report.Cases.Add(Case("train step m16", m16, 8, true, train.Medians[1], tMed.TrainFlops, report.SgemmGflops));
            report.TrainStepAllocatedBytes = AllocatedBy(tFull.TrainStep);
            if (options.Breakdown)
            {
                report.Breakdowns["train step full"] = Profile(tFull.TrainStep, options.Repeats);
                report.Breakdowns["train step m16"] = Profile(tMed.TrainStep, options.Repeats);
                double yard = report.SgemmThreadCpuGflops ?? SgemmRate.MeasureThreadCpu(repeats: options.Repeats);
                report.ThreadCpuCases.Add(CpuCase("train step full", s, 8, true, report.Breakdowns["train step full"], tFull.TrainFlops, yard));
                report.ThreadCpuCases.Add(CpuCase("train step m16", m16, 8, true, report.Breakdowns["train step m16"], tMed.TrainFlops, yard));
            }
            tFull = tMed = null!;

            if (options.Large)
            {
                progress?.Report("SiT-S/2 forward, 4,096 tokens, batch 1: full vs 64 mediators");
                var l = ModelRegistry.Get("SiT-S/2", 1024, 0);
                var l64 = ModelRegistry.Get("SiT-S/2", 1024, 64);
                var lFull = new ModelWorkload(l, 1);
                var lMed = new ModelWorkload(l64, 1);
                var large = Interleaved(options with { Quick = true }, cancel, lFull.Forward, lMed.Forward);
                report.Cases.Add(Case("forward full 4096", l, 1, false, large.Medians[0], lFull.ForwardFlops, report.SgemmGflops));
                report.Cases.Add(Case("forward m64 4096", l64, 1, false, large.Medians[1], lMed.ForwardFlops, report.SgemmGflops));
                report.Mediator4096Speedup = large.Ratio(0, 1);
            }

            return report;
        }
    }

    /// <summary>
    /// Peak resident growth of building the 4,096-token full-attention model and running one forward that
    /// keeps every block's activations (as training would); the score matrix is only ever a tile per thread.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void MeasureLargeMemory(PerformanceReport report)
    {
        PeakMemory.Reset();
        long before = PeakMemory.Current();
        var work = new ModelWorkload(ModelRegistry.Get("SiT-S/2", 1024, 0), 1);
        work.Forward();
        report.Large4096PeakBytes = PeakMemory.Peak();
        report.Large4096GrowthBytes = report.Large4096PeakBytes - before;
        GC.KeepAlive(work);
    }

    /// <summary>Peak resident memory while sampling steps of a random-weight SiT-XL/2 run (classifier-free guidance).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void MeasureXlSampling(PerformanceReport report, int steps, CancellationToken cancel)
    {
        PeakMemory.Reset();
        long baseline = PeakMemory.Current();
        var config = ModelRegistry.Get("SiT-XL/2", 256, 0);
        var model = new SiTModel(config) { KeepActivations = false };
        long weights = 0;
        var rng = new RandomSource(3);
        foreach (var p in model.Parameters)
        {
            weights += 4L * p.Value.Length;
            if (p.Trainable) rng.FillGaussian(p.Value.Span, 0, 0.02f);
        }
        var x = new Tensor(2, config.InChannels, config.InputSize, config.InputSize);
        rng.FillGaussian(x.Span);
        int[] y = [1, config.NumClasses];
        for (int i = 0; i < steps; i++)
        {
            cancel.ThrowIfCancellationRequested();
            float t = (i + 1f) / (steps + 1f);
            var v = model.ForwardWithCfg(x, [t, t], y, 4f);
            // One Euler step of the ODE, as a sampler would take it.
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(v.Span, 1f / steps, x.Span, x.Span);
        }
        report.XlWeightBytes = weights;
        report.XlSamplingPeakBytes = PeakMemory.Peak();
        report.XlBaselineBytes = baseline;
        GC.KeepAlive(model);
    }

    /// <summary>A case from its 1-thread breakdown: the "step" scope's CPU seconds per call.</summary>
    private static CaseResult CpuCase(string name, ModelConfig config, int batch, bool training, IReadOnlyList<OpTime> ops, double flops, double sgemm) =>
        Case(name, config, batch, training, ops.First(o => o.Name == "step").Seconds, flops, sgemm);

    private static CaseResult Case(string name, ModelConfig config, int batch, bool training, double seconds, double flops, double sgemm)
    {
        double gflops = flops / seconds / 1e9;
        return new CaseResult(name, config.NumTokens, AttentionKinds.MediatorCount(config), batch,
            training, seconds, batch / seconds, gflops, gflops / sgemm);
    }

    /// <summary>Per-case medians, and medians of per-round time ratios between cases.</summary>
    internal sealed class Timings(double[][] samples)
    {
        public double[] Medians { get; } = samples.Select(InterleavedTiming.Median).ToArray();

        /// <summary>Median over rounds of time(a) / time(b).</summary>
        public double Ratio(int a, int b) => InterleavedTiming.Ratio(samples[a], samples[b]);
    }

    /// <summary>Warms every case up, then times the cases in turn, round after round (<see cref="InterleavedTiming"/>).</summary>
    internal static Timings Interleaved(PerformanceOptions options, CancellationToken cancel, params Action[] cases) =>
        new(InterleavedTiming.Run(options.WarmUps, options.Repeats, cancel, settle: null, cases));

    /// <summary>
    /// Per-operation breakdown of <paramref name="repeats"/> steps on one thread, in that thread's CPU time
    /// (steady on a shared machine); shares are of the whole step's CPU time.
    /// </summary>
    private static IReadOnlyList<OpTime> Profile(Action step, int repeats)
    {
        using var compute = (ComputeContext.Current with { Threads = 1 }).Use();
        OpProfiler.Reset();
        OpProfiler.ThreadCpuTime = true;
        step();
        OpProfiler.Enabled = true;
        long t0 = OpProfiler.Now();
        try
        {
            for (int r = 0; r < repeats; r++)
                using (OpProfiler.Time("step")) step();
        }
        finally
        {
            OpProfiler.Enabled = false;
        }
        double total = (double)(OpProfiler.Now() - t0) / Stopwatch.Frequency;
        OpProfiler.ThreadCpuTime = false;
        return OpProfiler.Snapshot().Select(e => new OpTime(e.Name, e.Seconds / repeats, e.Seconds / total, e.Calls / repeats)).ToList();
    }

    /// <summary>Managed bytes allocated (all threads) by one call of a warmed-up step.</summary>
    private static long AllocatedBy(Action step)
    {
        step();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        step();
        return GC.GetTotalAllocatedBytes(precise: true) - before;
    }

    /// <summary>The SIMD features the kernels choose between (Vector512 off when the runtime disables AVX-512).</summary>
    public static string CpuFeatures()
    {
        var f = new List<string>();
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) f.Add("AVX2");
        if (System.Runtime.Intrinsics.X86.Fma.IsSupported) f.Add("FMA");
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) f.Add("AVX-512F");
        if (System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported) f.Add("AdvSIMD");
        f.Add(Vector512.IsHardwareAccelerated ? "Vector512 on" : "Vector512 off");
        if (!Vector256.IsHardwareAccelerated) f.Add("Vector256 off (128-bit kernels)");
        return string.Join(", ", f);
    }
}
