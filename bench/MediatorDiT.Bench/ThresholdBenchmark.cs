using System.Diagnostics;
using System.Globalization;
using System.Text;
using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Bench;

/// <summary>
/// The threshold sweep over the 65-pair grid with shared trajectory prefixes against the same sweep run
/// pair by pair, side by side in one process: wall time, network calls, and a check that both give the
/// same samples. SiT-S/2 at 16x16x4 latents (64 tokens, 4/16/64 mediators), random weights, SDE Euler.
/// </summary>
public static class ThresholdBenchmark
{
    public static string Run(int numSteps = 20, int samples = 2, ulong seed = 1)
    {
        var inv = CultureInfo.InvariantCulture;
        int[] mediators = [4, 16, 64];
        var models = mediators.Select((m, i) => SamplingBenchmark.RandomModel(ModelRegistry.Get("SiT-S/2", 128, m), seed + (ulong)i)).ToArray();
        var ladder = ModelLadder.FromModels(models);
        var sampler = (ISampler)(new SdeSampler(new Transport(), new SdeSamplerOptions { NumSteps = numSteps }));
        var options = new ThresholdSearchOptions { Samples = samples, Seed = seed, ReferenceSteps = 3 };

        (SweepRuns Runs, double Seconds) Time(bool share)
        {
            var search = new ThresholdSearch(ladder, sampler, options with { ShareTrajectories = share });
            var clock = Stopwatch.StartNew();
            var runs = search.Sweep(search.Grid, samples);
            return (runs, clock.Elapsed.TotalSeconds);
        }

        // Warm-up (JIT) on a few pairs and one sample, discarded.
        new ThresholdSearch(ladder, sampler, options with { Samples = 1 }).Sweep(ThresholdGrid.For(3).Take(3).ToArray(), 1);
        var shared = Time(true);
        var alone = Time(false);
        bool same = shared.Runs.Runs.Zip(alone.Runs.Runs).All(p => p.First.Samples.Span.SequenceEqual(p.Second.Samples.Span));
        var distinct = shared.Runs.Runs.Select(r => r.GflopsPerImage).Distinct().Count();

        var sb = new StringBuilder();
        sb.AppendLine($"Threshold sweep, 65 pairs + the largest model alone, SiT-S/2 16x16x4 latents (64 tokens), mediators 4/16/64, " +
                      $"random weights, SDE Euler, {numSteps} time points, {samples} samples (batch 1), {ComputeContext.Current.Threads} threads, GEMM {Gemm.Backend}.");
        sb.AppendLine($"{"sweep",-26} {"seconds",8} {"network calls",14}");
        sb.AppendLine($"{"shared prefixes",-26} {shared.Seconds.ToString("F2", inv),8} {shared.Runs.NetworkCalls,14}");
        sb.AppendLine($"{"independent runs",-26} {alone.Seconds.ToString("F2", inv),8} {alone.Runs.NetworkCalls,14}");
        sb.AppendLine($"speed-up {(alone.Seconds / shared.Seconds).ToString("F2", inv)}x in time, " +
                      $"{((double)alone.Runs.NetworkCalls / shared.Runs.NetworkCalls).ToString("F2", inv)}x in calls; identical samples: {same}; " +
                      $"{distinct} distinct costs among the 65 pairs.");
        return sb.ToString();
    }
}
