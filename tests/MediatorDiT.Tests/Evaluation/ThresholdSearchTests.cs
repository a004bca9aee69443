using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Sampling;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>
/// The sweep on the official switching ladder (1, 4, 16 mediators), held against independent sampler
/// runs that draw their noise as `mdit sample` does (each sample's z and draws from its own generator, <see cref="IndexedNoiseSource"/>).
/// </summary>
public class ThresholdSearchTests
{
    private const int Steps = 12, First = 2;

    private static readonly Lazy<SiTModel[]> FixtureModels = new(() => SwitchingFixture.Load().Models);

    private static SdeSampler Sampler() => new(new Transport(PathType.Linear, PredictionType.Velocity),
        new SdeSamplerOptions { NumSteps = Steps, DiffusionForm = DiffusionForm.Sigma, LastStep = LastStep.Mean, LastStepSize = 0.04 });

    private static ModelLadder Ladder(float cfg = 1f) =>
        ModelLadder.FromModels(FixtureModels.Value, cfg > 1f ? ClassifierFreeGuidance.Official(cfg) : null);

    private sealed record Independent(Tensor Samples, double MeanFlops, List<ModelUsageLog> Logs);

    /// <summary>Runs one schedule over the seed set batch by batch, exactly as the sample command does.</summary>
    private static Independent RunIndependently(ModelLadder ladder, IModelSchedule schedule, int samples, int batch, ulong seed)
    {
        var sampler = Sampler();
        var parts = new List<float>();
        var logs = new List<ModelUsageLog>();
        double flops = 0;
        for (int start = 0; start < samples; start += batch)
        {
            int n = Math.Min(batch, samples - start);
            var noise = new IndexedNoiseSource(seed, Enumerable.Range(start, n).ToArray());
            var z = noise.InitialNoise([4, 16, 16]);
            var y = Enumerable.Range(start, n).Select(i => i % 10).ToArray();
            var result = sampler.Sample(ladder, z, y, noise, schedule);
            parts.AddRange(result.Samples.Span.ToArray());
            flops += result.Usage.FlopsPerImage.Sum();
            logs.Add(result.Usage);
        }
        return new Independent(new Tensor(parts.ToArray(), samples, 4, 16, 16), flops / samples, logs);
    }

    [Theory]
    [InlineData(3, 1, 1f)]
    [InlineData(4, 2, 1f)]
    [InlineData(2, 1, 2.5f)]
    public void SharedPrefixSweepEqualsIndependentRunsBitForBit(int samples, int batch, float cfg)
    {
        var ladder = Ladder(cfg);
        var search = new ThresholdSearch(ladder, (ISampler)(Sampler()),
            new ThresholdSearchOptions { Samples = samples, BatchSize = batch, Seed = 7, ReferenceSteps = First });
        var runs = search.Sweep(search.Grid, samples);
        Assert.Equal(65, runs.Runs.Count);

        var largest = RunIndependently(ladder, FixedModelSchedule.Only(2), samples, batch, 7);
        Assert.True(largest.Samples.Span.SequenceEqual(runs.LargestModelSamples.Span), "largest model alone");
        Assert.Equal(largest.MeanFlops / 1e9, runs.LargestModelGflopsPerImage, 12);

        // The tree the runs form: each distinct model sequence prefix (per batch) costs one network call.
        var prefixes = new HashSet<string>();
        long independentCalls = 0;
        void AddPrefixes(Independent run)
        {
            for (int b = 0; b < run.Logs.Count; b++)
            {
                var log = run.Logs[b];
                independentCalls += log.NetworkCalls;
                for (int k = 0; k < log.StepCount; k++)
                    prefixes.Add($"{b}:" + string.Join("", Enumerable.Range(0, k + 1).Select(j => log.ModelAt(j, 0))));
            }
        }
        AddPrefixes(largest);
        var switchSteps = new HashSet<string>();
        foreach (var run in runs.Runs)
        {
            var expected = RunIndependently(ladder, new AdaptiveModelSchedule(run.Pair.Ratios, First), samples, batch, 7);
            Assert.True(expected.Samples.Span.SequenceEqual(run.Samples.Span), $"samples of ratios {run.Pair}");
            Assert.Equal(expected.MeanFlops / 1e9, run.GflopsPerImage, 12);
            AddPrefixes(expected);
            var firstSteps = expected.Logs.Select(l => string.Join("/", l.ModelPerStep.Select(m => m[0]))).ToArray();
            switchSteps.Add(string.Join("|", firstSteps));
            for (int i = 1; i <= 2; i++)
            {
                var reached = expected.Logs.SelectMany(l => Enumerable.Range(0, l.SampleCount)
                    .Select(s => Enumerable.Range(0, l.StepCount).FirstOrDefault(k => l.ModelAt(k, s) >= i, -1))).Where(k => k >= 0).ToArray();
                Assert.Equal(reached.Length / (double)samples, run.SwitchedFraction[i - 1], 12);
                if (reached.Length > 0) Assert.Equal(reached.Average(), run.MeanSwitchStep[i - 1], 12);
                else Assert.True(double.IsNaN(run.MeanSwitchStep[i - 1]));
            }
        }
        Assert.True(switchSteps.Count > 3, $"the grid should produce several distinct schedules on this ladder, got {switchSteps.Count}");
        Assert.Equal(independentCalls, runs.RequestedCalls);
        Assert.Equal(prefixes.Count, runs.NetworkCalls);
        Assert.True(runs.NetworkCalls * 3 < runs.RequestedCalls, $"{runs.NetworkCalls} calls of {runs.RequestedCalls}");
    }

    [Fact]
    public void IndependentModeGivesTheSameResultsWithEveryCall()
    {
        var ladder = Ladder();
        var grid = ThresholdGrid.For(3).Where((_, i) => i % 9 == 0).ToArray();
        var options = new ThresholdSearchOptions { Samples = 2, Seed = 3, ReferenceSteps = First };
        var shared = new ThresholdSearch(ladder, (ISampler)(Sampler()), options).Sweep(grid, 2);
        var alone = new ThresholdSearch(ladder, (ISampler)(Sampler()), options with { ShareTrajectories = false }).Sweep(grid, 2);
        for (int p = 0; p < grid.Length; p++)
        {
            Assert.True(shared.Runs[p].Samples.Span.SequenceEqual(alone.Runs[p].Samples.Span));
            Assert.Equal(shared.Runs[p].GflopsPerImage, alone.Runs[p].GflopsPerImage);
        }
        Assert.Equal(alone.RequestedCalls, alone.NetworkCalls);
        Assert.Equal(alone.RequestedCalls, shared.RequestedCalls);
        Assert.True(shared.NetworkCalls < alone.NetworkCalls);
    }

    [Fact]
    public void RefineRescoresFrontierCandidatesOnMoreSeedsWithTheGivenScorer()
    {
        var ladder = Ladder();
        var search = new ThresholdSearch(ladder, (ISampler)(Sampler()), new ThresholdSearchOptions { Samples = 3, Seed = 1, ReferenceSteps = First });
        var progress = new List<ThresholdSearchProgress>();
        var proxy = search.Search(progress: new InlineProgress(progress.Add));
        Assert.Equal(66 * 3, progress.Count);
        Assert.Equal(progress[^1].RunsDone, progress[^1].Runs);
        Assert.Equal("reference-rms", proxy.ScorerName);
        Assert.NotEmpty(proxy.Frontier);

        var refiner = new ThresholdRefiner(SampleScorers.PooledFrechet(), samples: 6, candidates: 3);
        var refined = refiner.Refine(search, proxy);
        Assert.Equal("frechet-pool2", refined.ScorerName);
        var positions = ThresholdRefiner.ChooseCandidates(proxy, 3, null);
        Assert.Equal(positions, refined.Pairs.Select(r => r.Position));

        // Held against the Frechet scorer on independent runs over the 6 refine seeds.
        var largest = RunIndependently(ladder, FixedModelSchedule.Only(2), 6, 1, 1);
        var frechet = new PooledFrechetScorer(largest.Samples);
        foreach (var r in refined.Pairs)
        {
            var run = RunIndependently(ladder, new AdaptiveModelSchedule(r.Pair.Ratios, First), 6, 1, 1);
            Assert.Equal(frechet.Score(run.Samples, Enumerable.Range(0, 6).Select(i => i % 10).ToArray(), default), r.Score);
            Assert.Equal(run.MeanFlops / 1e9, r.GflopsPerImage, 12);
            Assert.Equal(proxy.Pairs[r.Position].Score, r.ProxyScore);
        }
        // Every candidate is on the proxy frontier, so each is kept or dropped by the refined one.
        var a = refined.Agreement;
        Assert.Equal(refined.Pairs.Select(r => r.Pair.Index).Order(), a.Kept.Concat(a.OnlyProxy).Order());
        Assert.Empty(a.OnlyRefined);
        Assert.Equal(RankCorrelation.Spearman(refined.Pairs.Select(r => r.ProxyScore).ToArray(), refined.Pairs.Select(r => r.Score).ToArray()),
            a.Spearman);
    }

    [Fact]
    public void BadSearchSettingsAreRefusedBeforeSampling()
    {
        var ladder = Ladder();
        var sampler = (ISampler)(Sampler());
        Assert.Contains("at least 2 models", Assert.Throws<MediatorDiTException>(() =>
            new ThresholdSearch(ModelLadder.FromModel(FixtureModels.Value[0]), sampler)).Message);
        Assert.Contains("no switch could happen", Assert.Throws<MediatorDiTException>(() =>
            new ThresholdSearch(ladder, sampler, new ThresholdSearchOptions { ReferenceSteps = 10 })).Message);
        Assert.Contains("out of range", Assert.Throws<MediatorDiTException>(() =>
            new ThresholdSearch(ladder, sampler, new ThresholdSearchOptions { Labels = [3, 11], ReferenceSteps = First })).Message);
        Assert.Contains("at least one sample", Assert.Throws<MediatorDiTException>(() =>
            new ThresholdSearch(ladder, sampler, new ThresholdSearchOptions { Samples = 0 })).Message);
    }

    [Fact]
    public void CancellationStopsTheSweep()
    {
        var search = new ThresholdSearch(Ladder(), (ISampler)(Sampler()), new ThresholdSearchOptions { Samples = 2, ReferenceSteps = First });
        using var cts = new CancellationTokenSource();
        int reports = 0;
        var progress = new InlineProgress(_ => { if (++reports == 5) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => search.Search(progress: progress, cancellationToken: cts.Token));
        Assert.Equal(5, reports);
    }

    private sealed class InlineProgress(Action<ThresholdSearchProgress> report) : IProgress<ThresholdSearchProgress>
    {
        public void Report(ThresholdSearchProgress value) => report(value);
    }
}
