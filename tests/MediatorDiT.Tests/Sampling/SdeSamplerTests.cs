using MediatorDiT.Diffusion;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>
/// The SDE sampler: every method and last step written out by hand on a two-point grid, the grid
/// itself, the marginal of exact-score sampling, evaluation counts, validation, cancellation and progress.
/// </summary>
public class SdeSamplerTests
{
    private static readonly int[] Shape = [2, 1, 2, 2];

    private static Tensor Values(ulong seed) => new(TestData.Gaussian(8, seed), Shape);

    /// <summary>drift + w score for the linear path and a velocity v at (x, t), in double.</summary>
    private static double SdeDrift(double v, double x, double t, double w) =>
        w == 0 ? v : v + w * ((t * v - x) / (1 - t));

    [Theory]
    [InlineData(SdeMethod.Euler, LastStep.Mean)]
    [InlineData(SdeMethod.Euler, LastStep.Tweedie)]
    [InlineData(SdeMethod.Euler, LastStep.Euler)]
    [InlineData(SdeMethod.Euler, LastStep.None)]
    [InlineData(SdeMethod.Heun, LastStep.Mean)]
    [InlineData(SdeMethod.Heun, LastStep.Tweedie)]
    [InlineData(SdeMethod.Heun, LastStep.None)]
    public void StepsAndLastStepsFollowSiTsFormulas(SdeMethod method, LastStep lastStep)
    {
        const double size = 0.04;
        var field = new AffineVelocityField(0.3f, 0.1f);
        var options = new SdeSamplerOptions { Method = method, DiffusionForm = DiffusionForm.Linear, LastStep = lastStep, LastStepSize = size, NumSteps = 2 };
        var sampler = new SdeSampler(new Transport(), options);
        double t0 = 0, t1 = lastStep == LastStep.None ? 1 : 1 - size, dt = t1 - t0;
        Assert.Equal([(float)t0, (float)t1], sampler.Times);

        var z = Values(1);
        var noise = Values(2);
        var ladder = new ModelLadder([field], [1.0], 10, [1, 2, 2]);
        var result = sampler.Sample(ladder, z, [0, 1], new ReplayNoiseSource(noise.Reshape(1, 2, 1, 2, 2)), recordTrajectory: true);

        for (int i = 0; i < z.Length; i++)
        {
            double x = z.Span[i], w = noise.Span[i] * Math.Sqrt(dt), g0 = 1 - t0;
            double next;
            if (method == SdeMethod.Euler)
            {
                next = x + SdeDrift(field.At(x, t0), x, t0, g0) * dt + Math.Sqrt(2 * g0) * w;
            }
            else
            {
                double xHat = x + Math.Sqrt(2 * g0) * w;
                double k1 = SdeDrift(field.At(xHat, t0), xHat, t0, g0);
                double xp = xHat + dt * k1;
                double k2 = SdeDrift(field.At(xp, t1), xp, t1, 1 - t1);
                next = xHat + 0.5 * dt * (k1 + k2);
            }
            double alpha = t1, sigma = 1 - t1, score = (t1 * field.At(next, t1) - next) / (1 - t1);
            double final = lastStep switch
            {
                LastStep.Mean => next + SdeDrift(field.At(next, t1), next, t1, 1 - t1) * size,
                LastStep.Tweedie => next / alpha + sigma * sigma / alpha * score,
                LastStep.Euler => next + field.At(next, t1) * size,
                _ => next,
            };
            Assert.Equal(next, result.Trajectory[0].Span[i], 4);
            Assert.Equal(final, result.Samples.Span[i], 4);
        }
        Assert.Equal(2, result.Trajectory.Count);
        Assert.Equal(sampler.EvaluationsPerRun, result.Usage.Evaluations);
        Assert.Equal((method == SdeMethod.Heun ? 2 : 1) + (lastStep == LastStep.None ? 0 : 1), result.Usage.Evaluations);
        Assert.Equal(sampler.StepCount, result.Usage.StepCount);
        Assert.Equal(result.Usage.Evaluations * 1.0, result.Usage.FlopsPerImage[0]);
    }

    [Fact]
    public void TimeGridIsFloat32LinspaceWithExactEnds()
    {
        var grid = TimeGrid.Linspace(0, 0.96, 20);
        Assert.Equal(0f, grid[0]);
        Assert.Equal(0.96f, grid[^1]);
        float step = 0.96f / 19;
        for (int i = 0; i < 10; i++) Assert.Equal(step * i, grid[i]);
        for (int i = 10; i < 20; i++) Assert.Equal(0.96f - step * (19 - i), grid[i]);
    }

    [Theory]
    [InlineData(PathType.Linear, PredictionType.Velocity, DiffusionForm.Sigma, SdeMethod.Euler, LastStep.Mean, 0.04)]
    [InlineData(PathType.Linear, PredictionType.Velocity, DiffusionForm.Constant, SdeMethod.Heun, LastStep.Tweedie, 0.04)]
    [InlineData(PathType.GVP, PredictionType.Velocity, DiffusionForm.Decreasing, SdeMethod.Euler, LastStep.Euler, 0.04)]
    [InlineData(PathType.GVP, PredictionType.Noise, DiffusionForm.SBDM, SdeMethod.Euler, LastStep.Mean, 0.04)]
    [InlineData(PathType.Linear, PredictionType.Score, DiffusionForm.IncreasingDecreasing, SdeMethod.Heun, LastStep.Mean, 0.04)]
    [InlineData(PathType.VP, PredictionType.Velocity, DiffusionForm.SBDM, SdeMethod.Euler, LastStep.Mean, 0.005)]
    [InlineData(PathType.VP, PredictionType.Score, DiffusionForm.Sigma, SdeMethod.Heun, LastStep.Tweedie, 0.005)]
    [InlineData(PathType.Linear, PredictionType.Velocity, DiffusionForm.Linear, SdeMethod.Euler, LastStep.None, 0.0)]
    public void ExactScoreSamplingReachesTheDataDistribution(PathType path, PredictionType prediction, DiffusionForm form, SdeMethod method,
        LastStep lastStep, double lastStepSize)
    {
        // VP's drift is stiff near the data (sigma_t ~ 0.14 at t = 0.96), so its last step must be small:
        // a 0.04 Mean step there shrinks the spread by ~12%, as the official sampler does too.
        const double mean = 0.5, std = 0.5;
        var transport = new Transport(path, prediction);
        var field = new GaussianDataField(transport, mean, std);
        var sampler = new SdeSampler(transport, new SdeSamplerOptions { Method = method, DiffusionForm = form, LastStep = lastStep, LastStepSize = lastStepSize, NumSteps = 200 });
        var z = new Tensor(TestData.Gaussian(8 * 4 * 8 * 8, 11), 8, 4, 8, 8);
        var result = sampler.Sample(field.Ladder(), z, new int[8], new GaussianNoiseSource(12));
        var values = result.Samples.Span.ToArray();
        double m = values.Average(), s = Math.Sqrt(values.Average(v => (v - m) * (v - m)));
        Assert.True(Math.Abs(m - mean) < 0.03, $"mean {m}, expected {mean}.");
        Assert.True(Math.Abs(s - std) < 0.05 * std, $"std {s}, expected {std}.");
    }

    [Fact]
    public void SbdmAtAnInfiniteStartIsRefusedUpFront()
    {
        var e = Assert.Throws<MediatorDiTException>(() => new SdeSampler(new Transport(), new SdeSamplerOptions { DiffusionForm = DiffusionForm.SBDM }));
        Assert.Contains("SBDM diffusion is ∞ at t = 0", e.Message.Replace("Infinity", "∞"));
        _ = new SdeSampler(new Transport(sampleEps: 1e-3), new SdeSamplerOptions { DiffusionForm = DiffusionForm.SBDM });
    }

    [Fact]
    public void BadOptionsAndInputsAreRefusedBeforeAnyNetworkCall()
    {
        var transport = new Transport();
        Assert.Contains("num_steps", Assert.Throws<MediatorDiTException>(() => new SdeSampler(transport, new SdeSamplerOptions { NumSteps = 1 })).Message);
        Assert.Contains("last step size", Assert.Throws<MediatorDiTException>(() => new SdeSampler(transport, new SdeSamplerOptions { LastStepSize = 1.5 })).Message);
        Assert.Contains("diffusion norm", Assert.Throws<MediatorDiTException>(() => new SdeSampler(transport, new SdeSamplerOptions { DiffusionNorm = -1 })).Message);

        var counter = new CountingFunction(new AffineVelocityField(0.1f, 0));
        var ladder = new ModelLadder([counter], [0.0], 10, [1, 2, 2]);
        var sampler = new SdeSampler(transport, new SdeSamplerOptions { NumSteps = 5 });
        var z = Values(1);
        Assert.Contains("class label 11", Assert.Throws<MediatorDiTException>(() => sampler.Sample(ladder, z, [0, 11], new GaussianNoiseSource(1))).Message);
        Assert.Contains("class label -1", Assert.Throws<MediatorDiTException>(() => sampler.Sample(ladder, z, [-1, 0], new GaussianNoiseSource(1))).Message);
        Assert.Contains("2 samples but 3 labels", Assert.Throws<MediatorDiTException>(() => sampler.Sample(ladder, z, [0, 1, 2], new GaussianNoiseSource(1))).Message);
        Assert.Contains("[B, 1, 2, 2]", Assert.Throws<MediatorDiTException>(() => sampler.Sample(ladder, new Tensor(2, 1, 3, 3), [0, 1], new GaussianNoiseSource(1))).Message);
        Assert.Contains("needs 4", Assert.Throws<MediatorDiTException>(() => sampler.Sample(ladder, z, [0, 1], new ReplayNoiseSource(new Tensor(3, 2, 1, 2, 2)))).Message);
        Assert.Contains("sampler's state", Assert.Throws<MediatorDiTException>(() => sampler.Sample(ladder, z, [0, 1], new ReplayNoiseSource(new Tensor(4, 1, 1, 2, 2)))).Message);
        Assert.Equal(0, counter.Calls);
        // The null label (num_classes) is allowed: unconditional sampling.
        sampler.Sample(ladder, z, [10, 10], new GaussianNoiseSource(1));
        Assert.Equal(5, counter.Calls);
    }

    [Fact]
    public void ProgressIsReportedPerStepAndCancellationStopsTheRun()
    {
        var ladder = new ModelLadder([new AffineVelocityField(0.1f, 0)], [2.0], 10, [1, 2, 2]);
        var sampler = new SdeSampler(new Transport(), new SdeSamplerOptions { NumSteps = 6 });
        var reports = new List<SamplingProgress>();
        sampler.Sample(ladder, Values(1), [0, 1], new GaussianNoiseSource(3), progress: new SynchronousProgress<SamplingProgress>(reports.Add));
        Assert.Equal(Enumerable.Range(1, 6), reports.Select(r => r.StepsDone));
        Assert.All(reports, r => Assert.Equal(6, r.StepCount));
        Assert.Equal(12.0, reports[^1].MeanFlopsPerImage);

        using var cancel = new CancellationTokenSource();
        int seen = 0;
        var progress = new SynchronousProgress<SamplingProgress>(_ => { if (++seen == 2) cancel.Cancel(); });
        Assert.Throws<OperationCanceledException>(() =>
            sampler.Sample(ladder, Values(1), [0, 1], new GaussianNoiseSource(3), progress: progress, cancellationToken: cancel.Token));
        Assert.Equal(2, seen);
    }

    [Fact]
    public void GaussianNoiseIsReproducibleFromTheSeed()
    {
        var ladder = new ModelLadder([new AffineVelocityField(0.1f, 0)], [0.0], 10, [1, 2, 2]);
        var sampler = new SdeSampler(new Transport(), new SdeSamplerOptions { NumSteps = 4 });
        var a = sampler.Sample(ladder, Values(1), [0, 1], new GaussianNoiseSource(5));
        var b = sampler.Sample(ladder, Values(1), [0, 1], new GaussianNoiseSource(5));
        var c = sampler.Sample(ladder, Values(1), [0, 1], new GaussianNoiseSource(6));
        Assert.Equal(a.Samples.Span.ToArray(), b.Samples.Span.ToArray());
        Assert.NotEqual(a.Samples.Span.ToArray(), c.Samples.Span.ToArray());
    }
}

/// <summary>An IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
