using System.Diagnostics;
using System.Globalization;
using System.Text;
using MediatorDiT.Diffusion;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Bench;

/// <summary>
/// Sampling throughput of SiT-S/2 at 32x32x4 latents (256 tokens) with random weights: one model with 64
/// mediators against a step-wise dynamic ladder of 4, 16 and 64 mediators under the official adaptive rule,
/// the ladder's FLOPs saving next to its measured wall-time saving, and the official two-call SDE step
/// (drift and score from separate network calls) against the one-call step, which gives the same samples.
/// </summary>
public static class SamplingBenchmark
{
    public sealed record Timing(string Name, int Runs, double MedianSeconds, int Images, double MeanGflopsPerImage, int Evaluations)
    {
        public double ImagesPerSecond => Images / MedianSeconds;
    }

    /// <summary>
    /// Runs the comparison and returns a plain-text report. SDE Euler-Maruyama, sigma diffusion, Mean last
    /// step, <paramref name="numSteps"/> time points, a batch of <paramref name="batch"/>. Each timing is the
    /// median of up to <paramref name="repeats"/> runs, stopping early once a case has used
    /// <paramref name="secondsPerCase"/>; a warm-up run precedes them only when a run is short (under 2 s),
    /// where JIT compilation would show. The defaults take about a minute on 2 cores with the packed or
    /// OpenBLAS GEMM; with the plain reference GEMM (MDIT_GEMM=reference) use e.g. Run(8, 1).
    /// </summary>
    public static string Run(int numSteps = 20, int batch = 2, int repeats = 3, double secondsPerCase = 30, ulong seed = 1)
    {
        if (numSteps < 6) throw new MediatorDiTException($"the benchmark needs at least 6 time points (3 reference steps, then decisions), got {numSteps}.");
        if (batch < 1) throw new MediatorDiTException($"the benchmark batch must be at least 1, got {batch}.");
        var inv = CultureInfo.InvariantCulture;
        int[] mediators = [4, 16, 64];
        var models = mediators.Select((m, i) => RandomModel(ModelRegistry.Get("SiT-S/2", 256, m), seed + (ulong)i)).ToArray();
        var ladder = ModelLadder.FromModels(models);
        var largest = ModelLadder.FromModel(models[^1]);
        var sampler = new SdeSampler(new Transport(), new SdeSamplerOptions
        {
            Method = SdeMethod.Euler, DiffusionForm = DiffusionForm.Sigma, LastStep = LastStep.Mean, NumSteps = numSteps,
        });
        var schedule = new AdaptiveModelSchedule([0.9, 0.6], referenceSteps: 3);

        var config = models[0].Config;
        var z = new GaussianNoiseSource(seed + 100).Draw(batch, config.InChannels, config.InputSize, config.InputSize);
        int[] y = Enumerable.Range(0, batch).Select(i => (int)((seed + (ulong)i * 7) % (ulong)config.NumClasses)).ToArray();

        SamplingResult Sample(ModelLadder l, IModelSchedule? s) => sampler.Sample(l, z, y, new GaussianNoiseSource(seed + 200), s);

        var single = Measure($"m{mediators[^1]} alone", () => Sample(largest, null), batch, repeats, secondsPerCase, out _);
        var dynamic = Measure("ladder m4/m16/m64", () => Sample(ladder, schedule), batch, repeats, secondsPerCase, out var ladderResult);
        var twoCallLadder = ladder.WithStages((_, stage) => new TwoCallFunction(stage));
        var twoCall = Measure("ladder, official 2 calls/step", () => Sample(twoCallLadder, schedule), batch, repeats, secondsPerCase, out var twoCallResult);
        float twoCallDiff = MaxAbsDiff(ladderResult.Samples, twoCallResult.Samples);

        var sb = new StringBuilder();
        sb.AppendLine($"SiT-S/2, 32x32x4 latents (256 tokens), random weights; SDE Euler-Maruyama, sigma diffusion, Mean last step, " +
                      $"{numSteps} time points, batch {batch}, {ComputeContext.Current.Threads} threads, GEMM {Gemm.Backend}; median of the runs shown.");
        sb.AppendLine("Per-image GFLOPs per network call (1 FLOP = 1 multiply-accumulate): " +
                      string.Join(", ", mediators.Select((m, i) => $"m{m} {(ladder.FlopsPerImage[i] / 1e9).ToString("F4", inv)}")));
        sb.AppendLine("Adaptive rule: ratios 0.9 / 0.6 of the mean L1 change over steps 1-3. Steps per model: " +
                      string.Join(", ", mediators.Select((m, i) => $"m{m} {ladderResult.Usage.StepsServedBy(i, 0)}")) + ".");
        sb.AppendLine();
        sb.AppendLine($"{"run",-32} {"runs",4} {"median s",9} {"images/s",9} {"GFLOPs/img",11} {"calls",6}");
        foreach (var r in new[] { single, dynamic, twoCall })
            sb.AppendLine($"{r.Name,-32} {r.Runs,4} {r.MedianSeconds.ToString("F3", inv),9} {r.ImagesPerSecond.ToString("F4", inv),9} " +
                          $"{r.MeanGflopsPerImage.ToString("F3", inv),11} {r.Evaluations,6}");
        sb.AppendLine();
        double flopSaving = 1 - dynamic.MeanGflopsPerImage / single.MeanGflopsPerImage;
        double timeSaving = 1 - dynamic.MedianSeconds / single.MedianSeconds;
        sb.AppendLine($"ladder vs m{mediators[^1]} alone: FLOPs saving {flopSaving.ToString("P1", inv)}, measured wall-time saving {timeSaving.ToString("P1", inv)}.");
        sb.AppendLine($"official two-call SDE step vs one call: {twoCall.MedianSeconds.ToString("F3", inv)} s vs {dynamic.MedianSeconds.ToString("F3", inv)} s " +
                      $"({(twoCall.MedianSeconds / dynamic.MedianSeconds).ToString("F2", inv)}x), max |sample difference| {twoCallDiff.ToString("G3", inv)}.");
        sb.AppendLine("(The two-call row's GFLOPs column counts evaluations; it spends twice that.)");
        return sb.ToString();
    }

    private static Timing Measure(string name, Func<SamplingResult> run, int batch, int repeats, double secondsPerCase, out SamplingResult result)
    {
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        var sw = Stopwatch.StartNew();
        result = run();
        double first = sw.Elapsed.TotalSeconds;
        if (first >= 2) times.Add(first); // long runs: JIT time is noise, count the first run
        while (times.Count < Math.Max(1, repeats) && (times.Count == 0 || total.Elapsed.TotalSeconds < secondsPerCase))
        {
            sw.Restart();
            result = run();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return new Timing(name, times.Count, times[times.Count / 2], batch, result.Usage.MeanFlopsPerImage / 1e9, result.Usage.Evaluations);
    }

    /// <summary>The official initialisation, then small random adaLN and output weights so every path does work.</summary>
    internal static SiTModel RandomModel(ModelConfig config, ulong seed)
    {
        var model = new SiTModel(config);
        ModelInitializer.Initialize(model, seed);
        var rng = new RandomSource(seed + 1000);
        foreach (var p in model.Parameters)
            if (p.Trainable && (p.Name.Contains("adaLN", StringComparison.Ordinal) || p.Name.StartsWith("final_layer", StringComparison.Ordinal)))
                rng.FillGaussian(p.Value.Span, 0, 0.02f);
        return model;
    }

    private static float MaxAbsDiff(Tensor a, Tensor b)
    {
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a.Span[i] - b.Span[i]));
        return m;
    }

    /// <summary>The official SDE drift's cost: the network is called twice on the same input (drift, then score).</summary>
    private sealed class TwoCallFunction(IModelFunction inner) : IModelFunction
    {
        public int RowsPerSample => inner.RowsPerSample;

        public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y)
        {
            var drift = inner.Evaluate(x, t, y);
            _ = inner.Evaluate(x, t, y);
            return drift;
        }
    }
}
