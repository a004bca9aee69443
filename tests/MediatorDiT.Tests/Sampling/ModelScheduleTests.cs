using MediatorDiT.Diffusion;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>
/// The schedules' decision semantics on scripted states whose consecutive distances are chosen:
/// d_k = the change made by step k (every element moves by d_k, so its mean absolute change is d_k).
/// </summary>
public class ModelScheduleTests
{
    /// <summary>Feeds the states S_0 = 0, S_k = S_{k-1} + d_k and returns the model serving each step.</summary>
    private static int[][] Drive(IModelSchedule schedule, int ladderSize, double[][] distancesPerSample, int rowsPerSample = 1)
    {
        int samples = distancesPerSample.Length, steps = distancesPerSample[0].Length, per = 3;
        var layout = new BatchLayout(samples, rowsPerSample);
        var run = schedule.Start(new ScheduleContext(ladderSize, layout, steps));
        var served = new int[steps][];
        var previous = new Tensor(layout.Rows, per);
        for (int k = 0; k < steps; k++)
        {
            served[k] = Enumerable.Range(0, samples).Select(run.ModelOf).ToArray();
            var current = previous.Clone();
            for (int s = 0; s < samples; s++)
            for (int copy = 0; copy < rowsPerSample; copy++)
            for (int i = 0; i < per; i++)
                current.Span[layout.Row(s, copy) * per + i] += (float)distancesPerSample[s][k];
            run.Observe(new StepObservation(k, previous, current, layout));
            previous = current;
        }
        return served;
    }

    private static int[] ServedBySample0(IModelSchedule schedule, int ladderSize, params double[] d) =>
        Drive(schedule, ladderSize, [d]).Select(s => s[0]).ToArray();

    [Fact]
    public void ReferenceIsTheMeanOfSteps1ToFAndDecisionsServeFromTheNextStep()
    {
        var schedule = new AdaptiveModelSchedule([0.9, 0.6], 3);
        // d_0 (from the initial noise) is ignored; reference = mean(d_1..d_3) = 1.
        double[] d = [50, 1, 1, 1, 0.95, 0.85, 0.7, 0.55, 0.2, 5];
        Assert.Equal([0, 0, 0, 0, 0, 0, 1, 1, 2, 2], ServedBySample0(schedule, 3, d));
    }

    [Fact]
    public void TheStepFDistanceIsInTheReferenceNotADecision()
    {
        var schedule = new AdaptiveModelSchedule([0.9], 3);
        // d_3 is tiny but belongs to the reference (1 + 1 + 0.01) / 3 = 0.67; the first decision is after step 4.
        double[] d = [1, 1, 1, 0.01, 0.62, 0.5];
        Assert.Equal([0, 0, 0, 0, 0, 0], ServedBySample0(schedule, 2, d));
        double[] e = [1, 1, 1, 0.01, 0.55, 0.5];
        Assert.Equal([0, 0, 0, 0, 0, 1], ServedBySample0(schedule, 2, e));
    }

    [Fact]
    public void SeveralMovesInOneStepAndNeverBack()
    {
        var schedule = new AdaptiveModelSchedule([0.9, 0.6, 0.3], 2);
        double[] d = [1, 1, 1, 0.5, 9, 9, 0.1, 9];
        // After step 3 (d = 0.5 < 0.6) two moves at once; after step 6 (0.1 < 0.3) the last; large changes never move back.
        Assert.Equal([0, 0, 0, 0, 2, 2, 2, 3], ServedBySample0(schedule, 4, d));
    }

    [Fact]
    public void MeanSquaredDistanceComparesSquaredChanges()
    {
        var schedule = new AdaptiveModelSchedule([0.5], 1, StateDistance.MeanSquared);
        // Reference d_1^2 = 1; 0.8^2 = 0.64 stays, 0.7^2 = 0.49 moves.
        Assert.Equal([0, 0, 0, 0, 1], ServedBySample0(schedule, 2, 3, 1, 0.8, 0.7, 0.1));
    }

    [Fact]
    public void PerSampleScopeDecidesForEachSampleAndBatchMeanForAll()
    {
        double[][] d = [[1, 1, 1, 0.5, 0.5], [1, 1, 1, 1, 0.5]];
        var perSample = Drive(new AdaptiveModelSchedule([0.9], 2, scope: DecisionScope.PerSample), 2, d);
        Assert.Equal([0, 0, 0, 0, 1], perSample.Select(s => s[0]));
        Assert.Equal([0, 0, 0, 0, 0], perSample.Select(s => s[1]));
        var batch = Drive(new AdaptiveModelSchedule([0.9], 2), 2, d);
        // Batch mean after step 3: 0.75 < 0.9 moves both samples.
        Assert.All(batch, s => Assert.Equal(s[0], s[1]));
        Assert.Equal([0, 0, 0, 0, 1], batch.Select(s => s[0]));
        // Guided layout: a sample's two rows are averaged (both move by d here, so the same decisions).
        var guided = Drive(new AdaptiveModelSchedule([0.9], 2, scope: DecisionScope.PerSample), 2, d, rowsPerSample: 2);
        Assert.Equal(perSample.Select(s => s.ToArray()), guided.Select(s => s.ToArray()));
    }

    [Fact]
    public void DistancesAverageOverTheRowsOfEachUnit()
    {
        var layout = new BatchLayout(2, 2);
        var previous = new Tensor(4, 2);
        var current = new Tensor([1, 1, 2, 2, 3, 3, 6, 6], 4, 2);
        // Sample 0 owns rows 0 and 2, sample 1 rows 1 and 3.
        Assert.Equal([2.0, 4.0], new AdaptiveModelSchedule([0.5], 1, scope: DecisionScope.PerSample).Distances(previous, current, layout));
        Assert.Equal([3.0], new AdaptiveModelSchedule([0.5], 1).Distances(previous, current, layout));
        Assert.Equal([5.0, 20.0], new AdaptiveModelSchedule([0.5], 1, StateDistance.MeanSquared, DecisionScope.PerSample).Distances(previous, current, layout));
    }

    [Theory]
    [InlineData(new[] { 0.9, 1.2 }, "switch ratio 1.2 (switch 2) is outside [0, 1]")]
    [InlineData(new[] { -0.1 }, "switch ratio -0.1 (switch 1) is outside [0, 1]")]
    [InlineData(new[] { 0.6, 0.9 }, "must not increase from one switch to the next, got 0.6 then 0.9")]
    public void BadRatiosAreRefused(double[] ratios, string expected)
    {
        var e = Assert.Throws<MediatorDiTException>(() => new AdaptiveModelSchedule(ratios, 3));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ARatioOfZeroNeverMovesOnAndEqualRatiosMoveTwiceAtOnce()
    {
        // The authors' grid runs ratio2 from 0 to ratio1. Reference = 1; d = 0.5 after step 3 is below 0.9.
        double[] d = [1, 1, 1, 0.5, 0, 0, 0];
        Assert.Equal([0, 0, 0, 0, 1, 1, 1], ServedBySample0(new AdaptiveModelSchedule([0.9, 0.0], 2), 3, d));
        Assert.Equal([0, 0, 0, 0, 2, 2, 2], ServedBySample0(new AdaptiveModelSchedule([0.9, 0.9], 2), 3, d));
    }

    [Fact]
    public void ReferenceStepsAndLadderSizeAreChecked()
    {
        Assert.Contains("got 0", Assert.Throws<MediatorDiTException>(() => new AdaptiveModelSchedule([0.9], 0)).Message);
        var e = Assert.Throws<MediatorDiTException>(() => new AdaptiveModelSchedule([0.9], 3).Start(new ScheduleContext(3, new BatchLayout(1, 1), 10)));
        Assert.Contains("1 switch ratios but a ladder of 3 models needs 2", e.Message);
    }

    [Fact]
    public void FixedSchedulesSwitchAtTheGivenSteps()
    {
        double[] d = new double[8];
        Assert.Equal([0, 0, 1, 1, 2, 2, 2, 2], ServedBySample0(new FixedModelSchedule(0.25, 0.5), 3, d));
        Assert.Equal([0, 1, 1, 1, 1, 1, 2, 2], ServedBySample0(FixedModelSchedule.AtSteps(1, 6), 3, d));
        Assert.Equal([0, 0, 0, 1, 1, 1, 1, 1], ServedBySample0(new FixedModelSchedule(0.3), 2, d));
        Assert.Equal([2, 2, 2, 2, 2, 2, 2, 2], ServedBySample0(FixedModelSchedule.Only(2), 3, d));
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 0], ServedBySample0(new FixedModelSchedule(1.0), 2, d));
    }

    [Fact]
    public void BadFixedSchedulesAreRefused()
    {
        Assert.Contains("switch fraction 1.5", Assert.Throws<MediatorDiTException>(() => new FixedModelSchedule(0.2, 1.5)).Message);
        Assert.Contains("must not decrease, got 0.5 then 0.2", Assert.Throws<MediatorDiTException>(() => new FixedModelSchedule(0.5, 0.2)).Message);
        Assert.Contains("switch step -1", Assert.Throws<MediatorDiTException>(() => FixedModelSchedule.AtSteps(-1)).Message);
        var context = new ScheduleContext(3, new BatchLayout(1, 1), 10);
        Assert.Contains("1 switch points but a ladder of 3 models needs 2", Assert.Throws<MediatorDiTException>(() => new FixedModelSchedule(0.5).Start(context)).Message);
        Assert.Contains("model index 3", Assert.Throws<MediatorDiTException>(() => FixedModelSchedule.Only(3).Start(context)).Message);
    }

    [Fact]
    public void FixedScheduleOnTheOfficialLadderLogsItsSwitchesAndCost()
    {
        var fx = SwitchingFixture.Load();
        var ladder = ModelLadder.FromModels(fx.Models);
        var result = fx.Sampler().Sample(ladder, fx.Z, fx.Y, new ReplayNoiseSource(fx.Noise), FixedModelSchedule.AtSteps(7, 16));
        // The same switch steps as the official adaptive run, hence the same samples.
        TestData.AssertClose(fx.Final.Span, result.Samples.Span, 1e-4f, "final");
        Assert.Equal(7, result.Usage.StepsServedBy(0, 1));
        Assert.Equal(9, result.Usage.StepsServedBy(1, 1));
        Assert.Equal(4, result.Usage.StepsServedBy(2, 1));
        Assert.Equal(7 * ladder.FlopsPerImage[0] + 9 * ladder.FlopsPerImage[1] + 4 * ladder.FlopsPerImage[2], result.Usage.MeanFlopsPerImage, 3);
    }
}
