using MediatorDiT.Diffusion;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>
/// The step-wise dynamic mediator sampler against the official run: three models (1, 4, 16 mediators),
/// SDE Euler-Maruyama with the sigma diffusion and a Mean last step, the official adaptive switch rule,
/// recorded noise replayed. States match to 1e-4 * max(1, max|ref|); switch steps match exactly.
/// </summary>
public class SwitchingFixtureTests
{
    private const float StateTol = 1e-4f;

    [Fact]
    public void AdaptiveLadderReproducesTheOfficialTrajectoryAndSwitchSteps()
    {
        var fx = SwitchingFixture.Load();
        var result = fx.Sampler().Sample(ModelLadder.FromModels(fx.Models), fx.Z, fx.Y, new ReplayNoiseSource(fx.Noise),
            fx.Schedule(), recordTrajectory: true);

        Assert.Equal(fx.Trajectory.Dim(0), result.Trajectory.Count);
        for (int i = 0; i < result.Trajectory.Count; i++)
            TestData.AssertClose(fx.TrajectoryAt(i).Span, result.Trajectory[i].Span, StateTol, $"trajectory[{i}]");
        TestData.AssertClose(fx.Final.Span, result.Samples.Span, StateTol, "final");

        // The official code calls the network twice per step, so model_used has two entries per step.
        Assert.Equal(fx.ModelUsed.Length, 2 * result.Usage.StepCount);
        for (int step = 0; step < result.Usage.StepCount; step++)
        {
            Assert.Equal(fx.ModelUsed[2 * step], fx.ModelUsed[2 * step + 1]);
            for (int s = 0; s < fx.Y.Length; s++)
                Assert.True(fx.ModelUsed[2 * step] - 1 == result.Usage.ModelAt(step, s),
                    $"step {step}, sample {s}: official model {fx.ModelUsed[2 * step]}, ours {result.Usage.ModelAt(step, s) + 1}.");
        }
        // Pinned semantics: model 2 from step 7 (decided after step 6), model 3 from step 16, the last step included.
        Assert.Equal(7, result.Usage.FirstStepOf(1, 0));
        Assert.Equal(16, result.Usage.FirstStepOf(2, 0));
        Assert.Equal(2, result.Usage.ModelAt(result.Usage.StepCount - 1, 0));
    }

    [Fact]
    public void OneNetworkCallPerStepMatchesTheTwoCallOfficialRun()
    {
        var fx = SwitchingFixture.Load();
        var counters = new List<CountingFunction>();
        var ladder = ModelLadder.FromModels(fx.Models).WithStages((_, stage) =>
        {
            var counter = new CountingFunction(stage);
            counters.Add(counter);
            return counter;
        });
        var sampler = fx.Sampler();
        var result = sampler.Sample(ladder, fx.Z, fx.Y, new ReplayNoiseSource(fx.Noise), fx.Schedule());

        TestData.AssertClose(fx.Final.Span, result.Samples.Span, StateTol, "final");
        int numSteps = fx.Options.NumSteps;
        Assert.Equal(numSteps, counters.Sum(c => c.Calls));
        Assert.Equal(fx.ModelUsed.Length / 2, counters.Sum(c => c.Calls));
        for (int m = 0; m < counters.Count; m++)
            Assert.Equal(fx.ModelUsed.Count(u => u == m + 1) / 2, counters[m].Calls);
        Assert.Equal(numSteps, result.Usage.Evaluations);
        Assert.Equal(numSteps, result.Usage.NetworkCalls);
        Assert.Equal(numSteps, sampler.EvaluationsPerRun);
    }

    [Fact]
    public void FlopsPerImageSumTheServingModelsCounts()
    {
        var fx = SwitchingFixture.Load();
        var ladder = ModelLadder.FromModels(fx.Models);
        var result = fx.Sampler().Sample(ladder, fx.Z, fx.Y, new ReplayNoiseSource(fx.Noise), fx.Schedule());
        double expected = fx.ModelUsed.Where((_, k) => k % 2 == 0).Sum(m => ladder.FlopsPerImage[m - 1]);
        foreach (double flops in result.Usage.FlopsPerImage) Assert.Equal(expected, flops, 6);
        Assert.Equal(expected, result.Usage.MeanFlopsPerImage, 6);
        Assert.True(expected < fx.Options.NumSteps * ladder.FlopsPerImage[^1]);
    }

    [Fact]
    public void PerSampleDecisionsEqualRunningEachSampleAlone()
    {
        var fx = SwitchingFixture.Load();
        var ladder = ModelLadder.FromModels(fx.Models);
        var sampler = fx.Sampler();
        var batch = sampler.Sample(ladder, fx.Z, fx.Y, new ReplayNoiseSource(fx.Noise), fx.Schedule(DecisionScope.PerSample));

        int samples = fx.Z.Dim(0), per = fx.Z.Length / samples, draws = fx.Noise.Dim(0);
        for (int s = 0; s < samples; s++)
        {
            var z = new Tensor(fx.Z.Span.Slice(s * per, per).ToArray(), 1, 4, 16, 16);
            var noise = new Tensor(draws, 1, 4, 16, 16);
            for (int k = 0; k < draws; k++)
                fx.Noise.Span.Slice((k * samples + s) * per, per).CopyTo(noise.Span.Slice(k * per, per));
            var alone = sampler.Sample(ladder, z, [fx.Y[s]], new ReplayNoiseSource(noise), fx.Schedule());
            TestData.AssertClose(alone.Samples.Span, batch.Samples.Span.Slice(s * per, per), 1e-5f, $"sample {s}");
            for (int step = 0; step < alone.Usage.StepCount; step++)
                Assert.Equal(alone.Usage.ModelAt(step, 0), batch.Usage.ModelAt(step, s));
            Assert.Equal(alone.Usage.FlopsPerImage[0], batch.Usage.FlopsPerImage[s], 6);
        }
    }
}
