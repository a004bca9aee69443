using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>
/// A ladder whose three stages are the same field v(x, t) = (1 - t)^2 at costs 1, 2 and 4 GFLOPs: every
/// schedule then follows one trajectory whose step changes shrink, so the switch steps, and the cost of
/// each pair, follow from the distances alone.
/// </summary>
public class ConstructedLadderTests
{
    private sealed class DecayingField : IModelFunction
    {
        public int RowsPerSample => 1;

        public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y)
        {
            var v = new Tensor(x.Shape);
            int per = x.Length / x.Dim(0);
            for (int i = 0; i < x.Length; i++) v.Span[i] = (1 - t[i / per]) * (1 - t[i / per]);
            return v;
        }
    }

    private const int First = 3;
    private static readonly double[] Costs = [1e9, 2e9, 4e9];

    private static OdeSampler Sampler() => new(new Transport(), new OdeSamplerOptions { Method = OdeMethod.Euler, NumSteps = 21 });

    [Fact]
    public void CostPerImageFollowsTheSwitchStepsAndGrowsWithEitherRatio()
    {
        var field = new DecayingField();
        var ladder = new ModelLadder([field, field, field], Costs, 10, [1, 2, 2]);
        var search = new ThresholdSearch(ladder, (ISampler)(Sampler()), new ThresholdSearchOptions { Samples = 2, ReferenceSteps = First });
        var runs = search.Sweep(search.Grid, 2);

        // The distances the schedule sees, from a plain one-model run that records its trajectory.
        var z = new Tensor(1, 1, 2, 2);
        var plain = Sampler().Sample(new ModelLadder([field], [1e9], 10, [1, 2, 2]), z, [0], recordTrajectory: true);
        int steps = plain.Trajectory.Count;
        var d = new double[steps];
        for (int k = 1; k < steps; k++)
        {
            double sum = 0;
            for (int i = 0; i < 4; i++) sum += Math.Abs(plain.Trajectory[k].Span[i] - plain.Trajectory[k - 1].Span[i]);
            d[k] = sum / 4;
        }
        double reference = 0;
        for (int k = 1; k <= First; k++) reference += d[k] / First;

        foreach (var run in runs.Runs)
        {
            double cost = 0;
            int model = 0;
            for (int k = 0; k < steps; k++)
            {
                cost += Costs[model];
                if (k > First && k < steps - 1)
                    while (model < 2 && d[k] < run.Pair.Ratios[model] * reference) model++;
            }
            Assert.Equal(cost / 1e9, run.GflopsPerImage, 12);
        }

        double Cost(int r1, int r2) => runs.Runs.Single(r => r.Pair.Ratio1 == r1 / 10.0 && r.Pair.Ratio2 == r2 / 10.0).GflopsPerImage;
        for (int r1 = 1; r1 <= 10; r1++)
        for (int r2 = 0; r2 <= r1; r2++)
        {
            if (r2 > 0) Assert.True(Cost(r1, r2) >= Cost(r1, r2 - 1), $"raising ratio2 to {r2 / 10.0} at ratio1 {r1 / 10.0} lowered the cost");
            if (r1 > r2 && r1 > 1) Assert.True(Cost(r1, r2) >= Cost(r1 - 1, r2), $"raising ratio1 to {r1 / 10.0} at ratio2 {r2 / 10.0} lowered the cost");
        }
        Assert.True(Cost(10, 10) > Cost(10, 0) && Cost(10, 0) > Cost(1, 0), "the grid should span several costs");
        Assert.True(Cost(1, 0) > search.LowerBoundGflopsPerImage);
        Assert.Equal(20.0 * 4, runs.LargestModelGflopsPerImage);
    }
}
