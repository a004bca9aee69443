using MediatorDiT.Diffusion;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>
/// The ODE samplers on Gaussian data, where the probability-flow ODE has a closed-form solution, for
/// every path and prediction type; dopri5's tolerance control; schedules on an ODE.
/// </summary>
public class OdeSamplerTests
{
    private const double Mean = 0.5, Std = 0.5;

    private static Tensor Noise(ulong seed = 21) => new(TestData.Gaussian(2 * 4 * 8 * 8, seed), 2, 4, 8, 8);

    public static TheoryData<PathType, PredictionType, OdeMethod, int, float> Cases()
    {
        var data = new TheoryData<PathType, PredictionType, OdeMethod, int, float>();
        foreach (var path in Enum.GetValues<PathType>())
        foreach (var prediction in Enum.GetValues<PredictionType>())
        {
            data.Add(path, prediction, OdeMethod.Euler, 400, 2e-2f);
            data.Add(path, prediction, OdeMethod.Heun, 100, 2e-3f);
            data.Add(path, prediction, OdeMethod.Dopri5, 2, 2e-3f);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SolvesTheProbabilityFlowOde(PathType path, PredictionType prediction, OdeMethod method, int steps, float tol)
    {
        var transport = new Transport(path, prediction);
        var field = new GaussianDataField(transport, Mean, Std);
        var sampler = new OdeSampler(transport, new OdeSamplerOptions { Method = method, NumSteps = steps, Rtol = 1e-5, Atol = 1e-6 });
        var z = Noise();
        var result = sampler.Sample(field.Ladder(), z, [1, 2]);
        var exact = field.FlowMap(z, sampler.T0, sampler.T1);
        TestData.AssertClose(exact.Span, result.Samples.Span, tol, $"{path} {prediction} {method}");
        int expectedEvaluations = method switch { OdeMethod.Euler => steps - 1, OdeMethod.Heun => 2 * (steps - 1), _ => result.Usage.Evaluations };
        Assert.Equal(expectedEvaluations, result.Usage.Evaluations);
        Assert.Equal(field.Calls, result.Usage.Evaluations);
    }

    [Fact]
    public void Dopri5ErrorFollowsItsTolerance()
    {
        var transport = new Transport(PathType.GVP);
        var z = Noise();
        double previousError = double.MaxValue;
        int previousEvaluations = 0;
        foreach (double rtol in new[] { 1e-2, 1e-4, 1e-6 })
        {
            var field = new GaussianDataField(transport, Mean, Std);
            var sampler = new OdeSampler(transport, new OdeSamplerOptions { NumSteps = 2, Rtol = rtol, Atol = rtol * 1e-2 });
            var result = sampler.Sample(field.Ladder(), z, [1, 2]);
            double error = TestData.MaxAbsDiff(field.FlowMap(z, sampler.T0, sampler.T1).Span, result.Samples.Span);
            Assert.True(error < Math.Max(50 * rtol, 2e-5), $"rtol {rtol}: error {error}.");
            Assert.True(error <= previousError, $"rtol {rtol}: error {error} did not shrink from {previousError}.");
            Assert.True(result.Usage.Evaluations > previousEvaluations, $"rtol {rtol}: {result.Usage.Evaluations} evaluations, {previousEvaluations} before (error {error}).");
            previousError = error;
            previousEvaluations = result.Usage.Evaluations;
        }
    }

    [Fact]
    public void Dopri5GivesUpBeyondItsEvaluationLimit()
    {
        var transport = new Transport();
        var field = new GaussianDataField(transport, Mean, Std);
        var sampler = new OdeSampler(transport, new OdeSamplerOptions { Rtol = 1e-9, Atol = 1e-12, MaxEvaluations = 30 });
        var e = Assert.Throws<MediatorDiTException>(() => sampler.Sample(field.Ladder(), Noise(), [1, 2]));
        Assert.Contains("more than 30 evaluations", e.Message);
    }

    [Theory]
    [InlineData(OdeMethod.Euler)]
    [InlineData(OdeMethod.Heun)]
    [InlineData(OdeMethod.Dopri5)]
    public void AdaptiveScheduleRunsOnOdesAndOnlyChangesWhoServes(OdeMethod method)
    {
        // Two copies of the same field: the samples equal the single-field run, the log shows the switch.
        var transport = new Transport();
        var single = new GaussianDataField(transport, Mean, Std);
        var first = new GaussianDataField(transport, Mean, Std);
        var second = new GaussianDataField(transport, Mean, Std);
        var ladder = new ModelLadder([first, second], [1.0, 3.0], 10, [4, 8, 8]);
        var options = new OdeSamplerOptions { Method = method, NumSteps = 30 };
        var sampler = new OdeSampler(transport, options);
        var schedule = new AdaptiveModelSchedule([0.9], 3);
        var z = Noise();

        var switched = sampler.Sample(ladder, z, [1, 2], schedule, recordTrajectory: true);
        var plain = sampler.Sample(single.Ladder(), z, [1, 2]);

        TestData.AssertClose(plain.Samples.Span, switched.Samples.Span, 1e-6f, "samples");
        Assert.Equal(options.NumSteps - 1, switched.Trajectory.Count);
        Assert.Equal(switched.Samples.Span.ToArray(), switched.Trajectory[^1].Span.ToArray());
        int switchStep = switched.Usage.FirstStepOf(1, 0);
        Assert.True(switchStep >= 5, $"switched at step {switchStep}; the first decision is after step 4.");
        Assert.True(first.Calls > 0 && second.Calls > 0);

        // The decision is the official rule applied to the recorded states.
        var distances = Enumerable.Range(1, switched.Trajectory.Count - 1)
            .Select(k => schedule.Distances(switched.Trajectory[k - 1], switched.Trajectory[k], new BatchLayout(2, 1))[0]).ToArray();
        double reference = (distances[0] + distances[1] + distances[2]) / 3; // d_1..d_3 (distances[k-1] = d_k)
        int decided = Enumerable.Range(4, distances.Length - 3).First(k => distances[k - 1] < 0.9 * reference);
        Assert.Equal(decided + 1, switchStep);

        Assert.Equal(first.Calls * 1.0 + second.Calls * 3.0, switched.Usage.FlopsPerImage[0], 6);
        if (method == OdeMethod.Dopri5)
            Assert.Equal(plain.Usage.Evaluations + 1, switched.Usage.Evaluations); // one fresh derivative after the switch
    }

    [Fact]
    public void EmptyIntervalAndBadTolerancesAreRefused()
    {
        Assert.Contains("atol", Assert.Throws<MediatorDiTException>(() => new OdeSampler(new Transport(), new OdeSamplerOptions { Atol = 0 })).Message);
        Assert.Contains("rtol", Assert.Throws<MediatorDiTException>(() => new OdeSampler(new Transport(), new OdeSamplerOptions { Rtol = -1 })).Message);
        Assert.Contains("num_steps", Assert.Throws<MediatorDiTException>(() => new OdeSampler(new Transport(), new OdeSamplerOptions { NumSteps = 1 })).Message);
        Assert.Contains("ODE method 9", Assert.Throws<MediatorDiTException>(() => new OdeSampler(new Transport(), new OdeSamplerOptions { Method = (OdeMethod)9 })).Message);
    }
}
