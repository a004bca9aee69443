using MediatorDiT.Sampling;
using System.Runtime.InteropServices;
using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Diffusion.Gaussian;

/// <summary>
/// DiT's Gaussian diffusion against the official code (dit_diffusion.io.safetensors, the dit_model network):
/// float64 schedules to 1e-12, tensors to 1e-4 * max(1, max|ref|).
/// </summary>
public class GaussianDiffusionFixtureTests
{
    private const double ScheduleTol = 1e-12;
    private const float Tol = 1e-4f;
    private const int RespacedStep = 17;

    private static SafeTensorsFile Io() => SafeTensors.Read(Fixtures.PathOf("dit_diffusion.io.safetensors"));

    private static SiTModel Model() => ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));

    private static int[] Ints(SafeTensorsFile io, string key) => io.GetInt64(key).Select(v => checked((int)v)).ToArray();

    private static double[] Doubles(SafeTensorsFile io, string key)
    {
        var stored = io.Get(key);
        Assert.Equal(DType.F64, stored.DType);
        return MemoryMarshal.Cast<byte, double>(stored.Bytes.Span).ToArray();
    }

    private static void AssertClose(double[] expected, IReadOnlyList<double> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Count);
        double scale = Math.Max(1, expected.Max(Math.Abs)), worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Assert.True(worst <= ScheduleTol * scale, $"{what}: max |diff| {worst:G4} exceeds {ScheduleTol * scale:G4}.");
    }

    [Theory]
    [InlineData("full", "")]
    [InlineData("respaced", "250")]
    public void SchedulesMatchInFloat64(string prefix, string respacing)
    {
        var io = Io();
        var diffusion = GaussianDiffusion.Create(respacing);
        Assert.Equal(Ints(io, $"{prefix}.timestep_map"), diffusion.TimestepMap);
        Assert.Equal(1000, diffusion.OriginalNumSteps);
        AssertClose(Doubles(io, $"{prefix}.betas"), diffusion.Betas, $"{prefix}.betas");
        AssertClose(Doubles(io, $"{prefix}.alphas_cumprod"), diffusion.AlphasCumprod, $"{prefix}.alphas_cumprod");
        AssertClose(Doubles(io, $"{prefix}.alphas_cumprod_prev"), diffusion.AlphasCumprodPrev, $"{prefix}.alphas_cumprod_prev");
        AssertClose(Doubles(io, $"{prefix}.posterior_variance"), diffusion.PosteriorVariance, $"{prefix}.posterior_variance");
        AssertClose(Doubles(io, $"{prefix}.posterior_log_variance_clipped"), diffusion.PosteriorLogVarianceClipped,
            $"{prefix}.posterior_log_variance_clipped");
        AssertClose(Doubles(io, $"{prefix}.posterior_mean_coef1"), diffusion.PosteriorMeanCoef1, $"{prefix}.posterior_mean_coef1");
        AssertClose(Doubles(io, $"{prefix}.posterior_mean_coef2"), diffusion.PosteriorMeanCoef2, $"{prefix}.posterior_mean_coef2");
    }

    [Fact]
    public void QSampleMatches()
    {
        var io = Io();
        var xt = GaussianDiffusion.Create("").QSample(io.GetFloat("x_start"), Ints(io, "t"), io.GetFloat("noise"));
        TestData.AssertClose(io.GetFloat("q_sample").Span, xt.Span, Tol, "q_sample");
    }

    [Fact]
    public void TrainingLossesMatchPerSample()
    {
        var io = Io();
        var model = Model();
        var losses = GaussianDiffusion.Create("").TrainingLosses(
            DitNoisePredictors.Conditional(model, Ints(io, "y")), io.GetFloat("x_start"), Ints(io, "t"), io.GetFloat("noise"));
        TestData.AssertClose(io.GetFloat("loss.mse").Span, losses.Mse, Tol, "loss.mse");
        Assert.NotNull(losses.Vb);
        TestData.AssertClose(io.GetFloat("loss.vb").Span, losses.Vb, Tol, "loss.vb");
        TestData.AssertClose(io.GetFloat("loss.loss").Span, losses.Loss, Tol, "loss.loss");
    }

    [Fact]
    public void SamplingStepsAndChainMatchWithReplayedNoise()
    {
        var io = Io();
        var model = Model();
        var predictor = DitNoisePredictors.Conditional(model, Ints(io, "y"));
        var noise = new ReplayNoiseSource(io.GetFloat("noise_draws"));
        var respaced = GaussianDiffusion.Create("250");
        var stepT = Ints(io, "step.t");
        Assert.All(stepT, t => Assert.Equal(RespacedStep, t));
        var x = io.GetFloat("step.x");

        var ancestral = respaced.PSample(predictor, x, stepT, noise, clipDenoised: false);
        TestData.AssertClose(io.GetFloat("p_sample.sample").Span, ancestral.Sample.Span, Tol, "p_sample.sample");
        TestData.AssertClose(io.GetFloat("p_sample.pred_xstart").Span, ancestral.PredXStart.Span, Tol, "p_sample.pred_xstart");

        var ddim = respaced.DdimSample(predictor, x, stepT, noise, eta: 0f, clipDenoised: false);
        TestData.AssertClose(io.GetFloat("ddim.sample").Span, ddim.Sample.Span, Tol, "ddim.sample");
        TestData.AssertClose(io.GetFloat("ddim.pred_xstart").Span, ddim.PredXStart.Span, Tol, "ddim.pred_xstart");
        Assert.Equal(2, noise.Used);

        var chain = GaussianDiffusion.Create("10");
        var visited = new List<int>();
        var final = chain.PSampleLoop(predictor, io.GetFloat("chain10.z"), noise, clipDenoised: false, onStep: (i, _) => visited.Add(i));
        Assert.Equal(Enumerable.Range(0, 10).Reverse(), visited);
        TestData.AssertClose(io.GetFloat("chain10.final").Span, final.Span, Tol, "chain10.final");
        Assert.Equal(noise.Count, noise.Used);
    }
}
