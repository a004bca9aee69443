using MediatorDiT.Diffusion;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Diffusion;

/// <summary>
/// The transport's intervals, conversions and losses against their defining identities: for a pair
/// (x0, x1) the conditional velocity u_t, score -x0 / sigma_t and noise x0 at x_t must convert into each
/// other on every path.
/// </summary>
public class TransportTests
{
    public static TheoryData<PathType> AllPaths => new() { PathType.Linear, PathType.GVP, PathType.VP };

    private static readonly float[] Times = [0.05f, 0.3f, 0.5f, 0.8f, 0.95f];

    private static (float[] T, Tensor X0, Tensor X1, Tensor Xt, Tensor Ut) Pair(Transport transport, ulong seed = 1)
    {
        var x0 = new Tensor(TestData.Gaussian(Times.Length * 32, seed), Times.Length, 2, 4, 4);
        var x1 = new Tensor(TestData.Gaussian(Times.Length * 32, seed + 1), Times.Length, 2, 4, 4);
        var (xt, ut) = transport.PathSample(Times, x0, x1);
        return (Times, x0, x1, xt, ut);
    }

    /// <summary>-x0 / sigma_t per sample: the conditional score.</summary>
    private static Tensor ConditionalScore(Transport transport, float[] t, Tensor x0)
    {
        var score = new Tensor(x0.Shape);
        int per = x0.Length / t.Length;
        for (int b = 0; b < t.Length; b++)
        {
            float sigma = transport.Path.SigmaAt(t[b]).Sigma;
            for (int i = b * per; i < (b + 1) * per; i++) score.Span[i] = -x0.Span[i] / sigma;
        }
        return score;
    }

    [Theory]
    [MemberData(nameof(AllPaths))]
    public void ConversionsAgreeOnTheConditionalVelocityScoreAndNoise(PathType path)
    {
        var transport = new Transport(path);
        var (t, x0, _, xt, ut) = Pair(transport);
        var score = ConditionalScore(transport, t, x0);
        TestData.AssertClose(score.Span, transport.ScoreFromVelocity(ut, xt, t).Span, 1e-4f, "score from velocity");
        TestData.AssertClose(x0.Span, transport.NoiseFromVelocity(ut, xt, t).Span, 1e-4f, "noise from velocity");
        TestData.AssertClose(ut.Span, transport.VelocityFromScore(score, xt, t).Span, 1e-4f, "velocity from score");
    }

    [Theory]
    [MemberData(nameof(AllPaths))]
    public void EveryPredictionTypeYieldsTheSameDriftAndScore(PathType path)
    {
        foreach (var prediction in Enum.GetValues<PredictionType>())
        {
            var transport = new Transport(path, prediction);
            var (t, x0, _, xt, ut) = Pair(transport);
            var score = ConditionalScore(transport, t, x0);
            var output = prediction switch
            {
                PredictionType.Velocity => ut,
                PredictionType.Score => score,
                _ => x0,
            };
            TestData.AssertClose(ut.Span, transport.DriftFromPrediction(output, xt, t).Span, 1e-4f, $"{prediction} drift");
            TestData.AssertClose(score.Span, transport.ScoreFromPrediction(output, xt, t).Span, 1e-4f, $"{prediction} score");
        }
    }

    [Theory]
    [InlineData(PathType.Linear, PredictionType.Velocity, DiffusionForm.SBDM, false, 0.0, 0.0, 1.0)]
    [InlineData(PathType.Linear, PredictionType.Velocity, DiffusionForm.Sigma, true, 0.04, 0.0, 0.96)]
    [InlineData(PathType.Linear, PredictionType.Velocity, DiffusionForm.SBDM, true, 0.0, 0.0, 1.0)]
    [InlineData(PathType.GVP, PredictionType.Velocity, DiffusionForm.SBDM, true, 0.04, 0.0, 0.96)]
    [InlineData(PathType.Linear, PredictionType.Score, DiffusionForm.SBDM, false, 0.0, 1e-3, 1 - 1e-3)]
    [InlineData(PathType.GVP, PredictionType.Noise, DiffusionForm.Sigma, true, 0.04, 1e-3, 0.96)]
    [InlineData(PathType.VP, PredictionType.Velocity, DiffusionForm.SBDM, false, 0.0, 0.0, 1 - 1e-3)]
    [InlineData(PathType.VP, PredictionType.Velocity, DiffusionForm.SBDM, true, 0.04, 0.0, 0.96)]
    [InlineData(PathType.VP, PredictionType.Score, DiffusionForm.SBDM, true, 0.0, 0.0, 1 - 1e-3)]
    public void SamplingIntervalsAreSiTs(PathType path, PredictionType prediction, DiffusionForm form, bool sde, double lastStep, double t0, double t1)
    {
        var transport = new Transport(path, prediction);
        var (a, b) = transport.CheckInterval(transport.TrainEps, transport.SampleEps, form, sde: sde, eval: true, lastStepSize: lastStep);
        Assert.Equal(t0, a, 12);
        Assert.Equal(t1, b, 12);
        var (ra, rb) = transport.CheckInterval(transport.TrainEps, transport.SampleEps, form, sde: sde, reverse: true, eval: true, lastStepSize: lastStep);
        Assert.Equal(1 - t0, ra, 12);
        Assert.Equal(1 - t1, rb, 12);
    }

    [Fact]
    public void EpsilonsDefaultAsSiTAndTrainingUsesTheTrainEps()
    {
        Assert.Equal((0.0, 0.0), (new Transport().TrainEps, new Transport().SampleEps));
        Assert.Equal((1e-3, 1e-3), (new Transport(PathType.GVP, PredictionType.Noise).TrainEps, new Transport(PathType.GVP, PredictionType.Noise).SampleEps));
        var vp = new Transport(PathType.VP);
        Assert.Equal((1e-5, 1e-3), (vp.TrainEps, vp.SampleEps));
        Assert.Equal((0.0, 1 - 1e-5), vp.CheckInterval(vp.TrainEps, vp.SampleEps));
        // SBDM diffusion starts an SDE at eps even for velocity models.
        var linear = new Transport(PathType.Linear, trainEps: 0.01, sampleEps: 0.02);
        Assert.Equal((0.02, 0.96), linear.CheckInterval(linear.TrainEps, linear.SampleEps, DiffusionForm.SBDM, sde: true, eval: true, lastStepSize: 0.04));
    }

    [Fact]
    public void SampleDrawsNoiseThenTimesInsideTheTrainingInterval()
    {
        var transport = new Transport(PathType.VP);
        var x1 = new Tensor(TestData.Gaussian(64 * 8, 3), 64, 8);
        var (t, x0, same) = transport.Sample(x1, new RandomSource(7));
        Assert.Same(x1, same);
        Assert.Equal(x1.Shape, x0.Shape);
        Assert.All(t, v => Assert.InRange(v, 0f, (float)(1 - 1e-5)));
        var rng = new RandomSource(7);
        var expectedNoise = new float[x1.Length];
        rng.FillGaussian(expectedNoise);
        Assert.Equal(expectedNoise, x0.Span.ToArray());
        Assert.Equal((float)(rng.NextDouble() * (1 - 1e-5)), t[0]);
        double mean = x0.Span.ToArray().Average();
        Assert.InRange(mean, -0.1, 0.1);
    }

    [Theory]
    [MemberData(nameof(AllPaths))]
    public void LossesVanishAtTheTargetAndMeasureTheWeightedError(PathType path)
    {
        foreach (var prediction in Enum.GetValues<PredictionType>())
        foreach (var weighting in Enum.GetValues<LossWeighting>())
        {
            var transport = new Transport(path, prediction, weighting);
            var (t, x0, x1, _, ut) = Pair(transport);
            var score = ConditionalScore(transport, t, x0);
            var target = prediction switch { PredictionType.Velocity => ut, PredictionType.Score => score, _ => x0 };
            foreach (float loss in transport.TrainingLoss(target, t, x0, x1))
                Assert.True(Math.Abs(loss) < 1e-8, $"{path} {prediction} {weighting}: loss {loss} at the target.");

            const float offset = 0.5f;
            var shifted = target.Clone();
            for (int i = 0; i < shifted.Length; i++) shifted.Span[i] += offset;
            var losses = transport.TrainingLoss(shifted, t, x0, x1);
            for (int b = 0; b < t.Length; b++)
            {
                double sigma = transport.Path.SigmaAt(t[b]).Sigma, variance = transport.Path.DriftAt(t[b]).Variance;
                double weight = prediction == PredictionType.Velocity ? 1 : weighting switch
                {
                    LossWeighting.Velocity => Math.Pow(variance / sigma, 2),
                    LossWeighting.Likelihood => variance / (sigma * sigma),
                    _ => 1,
                };
                double expected = weight * Math.Pow(offset * (prediction == PredictionType.Score ? sigma : 1), 2);
                Assert.True(Math.Abs(losses[b] - expected) <= 1e-4 * Math.Max(1, expected),
                    $"{path} {prediction} {weighting} t={t[b]}: loss {losses[b]}, expected {expected}.");
            }
        }
    }

    [Theory]
    [InlineData(PredictionType.Velocity, LossWeighting.None)]
    [InlineData(PredictionType.Score, LossWeighting.Velocity)]
    [InlineData(PredictionType.Noise, LossWeighting.Likelihood)]
    public void LossGradientMatchesFiniteDifferences(PredictionType prediction, LossWeighting weighting)
    {
        var transport = new Transport(PathType.GVP, prediction, weighting);
        var (t, x0, x1, _, _) = Pair(transport, 5);
        var p = new Tensor(TestData.Gaussian(x0.Length, 9), x0.Shape);
        var gradient = new Tensor(p.Shape);
        transport.TrainingLoss(p, t, x0, x1, gradient);
        double MeanLoss() => transport.TrainingLoss(p, t, x0, x1).Average(v => (double)v);
        foreach (int i in new[] { 0, 37, 100, p.Length - 1 })
        {
            float keep = p.Span[i];
            const float h = 1e-2f;
            p.Span[i] = keep + h;
            double up = MeanLoss();
            p.Span[i] = keep - h;
            double down = MeanLoss();
            p.Span[i] = keep;
            double numeric = (up - down) / (2 * h);
            Assert.True(Math.Abs(numeric - gradient.Span[i]) <= 2e-3 * Math.Max(1e-3, Math.Abs(numeric)) + 1e-6,
                $"element {i}: analytic {gradient.Span[i]}, numeric {numeric}.");
        }
    }

    [Fact]
    public void BadInputsAreNamed()
    {
        var transport = new Transport();
        var x = new Tensor(2, 3);
        var e = Assert.Throws<MediatorDiTException>(() => transport.ComputeDrift(x, [0.5f]));
        Assert.Contains("t has 1 entries but x has 2 samples", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => transport.ScoreFromVelocity(new Tensor(2, 4), x, [0.1f, 0.2f]));
        Assert.Contains("x has shape [2, 3] but velocity has [2, 4]", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => transport.ComputeDiffusion([0.5f], DiffusionForm.Sigma, -1));
        Assert.Contains("diffusion norm", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => new Transport(sampleEps: 0.7));
        Assert.Contains("sample_eps", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => new Transport((PathType)7));
        Assert.Contains("path type 7", e.Message);
    }
}
