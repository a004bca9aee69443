using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Diffusion.Gaussian;

/// <summary>Respacing, schedules, noise replay, the training-loss gradient and input errors of the Gaussian diffusion.</summary>
public class GaussianDiffusionTests
{
    [Theory]
    [InlineData(1000, "10", new[] { 0, 111, 222, 333, 444, 555, 666, 777, 888, 999 })]
    [InlineData(1000, "25", new[] { 0, 42, 83, 125, 166, 208, 250, 291, 333, 375, 416, 458, 500, 541, 583, 624, 666, 708, 749, 791, 832, 874, 916, 957, 999 })]
    [InlineData(100, "3,1,7", new[] { 0, 16, 33, 34, 67, 72, 78, 83, 88, 94, 99 })]
    [InlineData(1000, "1", new[] { 0 })]
    public void RespacingFollowsSpaceTimesteps(int steps, string spec, int[] expected)
    {
        Assert.Equal(expected, TimestepSpacing.Parse(steps, spec));
    }

    [Fact]
    public void RespacingSectionsAndDdimStrides()
    {
        int[] sections = TimestepSpacing.Parse(300, "10,15,20");
        Assert.Equal(45, sections.Length);
        Assert.Equal([0, 11, 22, 33, 44, 55, 66, 77, 88, 99, 100, 107, 114], sections[..13]);
        Assert.Equal([200, 205, 210, 216, 221], sections[25..30]);
        Assert.Equal(299, sections[^1]);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => 20 * i), TimestepSpacing.Parse(1000, "ddim50"));
        Assert.Equal(Enumerable.Range(0, 1000), TimestepSpacing.Parse(1000, ""));
        Assert.Throws<MediatorDiTException>(() => TimestepSpacing.Parse(1000, "ddim3000"));
        Assert.Throws<MediatorDiTException>(() => TimestepSpacing.Parse(10, "20"));
        Assert.Throws<MediatorDiTException>(() => TimestepSpacing.Parse(1000, "fast"));
    }

    [Fact]
    public void RespacedProcessKeepsAlphasCumprodAndMapsTimesteps()
    {
        var full = GaussianDiffusion.Create("");
        var spaced = GaussianDiffusion.Create("ddim50");
        Assert.Equal(50, spaced.NumTimesteps);
        for (int i = 0; i < 50; i++)
            Assert.Equal(full.AlphasCumprod[20 * i], spaced.AlphasCumprod[i], 14);
        Assert.Equal([0, 40, 980], spaced.MapTimesteps([0, 2, 49]));
        Assert.Throws<MediatorDiTException>(() => spaced.MapTimesteps([50]));
    }

    [Fact]
    public void SchedulesMatchTheirDefinitions()
    {
        var linear = BetaSchedules.Named(BetaSchedules.Linear, 1000);
        Assert.Equal(1e-4, linear[0], 15);
        Assert.Equal(0.02, linear[^1]);
        Assert.Equal(1e-4 * 4, BetaSchedules.Named(BetaSchedules.Linear, 250)[0], 15);
        // Python: betas_for_alpha_bar(1000, cos((t + 0.008) / 1.008 * pi / 2) ** 2).
        var cosine = BetaSchedules.Named(BetaSchedules.Cosine, 1000);
        Assert.Equal(4.128422482196914e-05, cosine[0], 15);
        Assert.Equal(4.614175273665033e-05, cosine[1], 15);
        Assert.Equal(0.003155691441585007, cosine[500], 15);
        Assert.Equal(0.999, cosine[999]);
        Assert.Throws<MediatorDiTException>(() => BetaSchedules.Named("quadratic", 1000));

        var d = GaussianDiffusion.Create("", BetaSchedules.Cosine);
        Assert.Equal(d.PosteriorLogVarianceClipped[1], d.PosteriorLogVarianceClipped[0]);
        Assert.Equal(0.0, d.AlphasCumprodNext[^1]);
        Assert.Equal(1.0, d.AlphasCumprodPrev[0]);
    }

    [Fact]
    public void ReplayedNoiseIsUsedInOrderAndChecked()
    {
        var draws = Tensor.FromArray([1, 2, 3, 4, 5, 6], 3, 2);
        var noise = new ReplayNoiseSource(draws);
        var buffer = new float[2];
        noise.Next(buffer);
        Assert.Equal([1f, 2f], buffer);
        noise.Next(buffer);
        Assert.Equal([3f, 4f], buffer);
        Assert.Contains("2 values but 3 were requested", Assert.Throws<MediatorDiTException>(() => noise.Next(new float[3])).Message);
        noise.Next(buffer);
        Assert.Contains("used up", Assert.Throws<MediatorDiTException>(() => noise.Next(buffer)).Message);
    }

    [Fact]
    public void AWrongNetworkOutputIsAClearError()
    {
        var d = GaussianDiffusion.Create("10");
        var x = new Tensor(2, 4, 3, 3);
        NoisePredictor halfChannels = (input, _) => new Tensor(2, 4, 3, 3);
        var e = Assert.Throws<MediatorDiTException>(() => d.PSample(halfChannels, x, [3, 3], new GaussianNoiseSource(1)));
        Assert.Contains("[2, 4, 3, 3]", e.Message);
        Assert.Contains("[2, 8, ...]", e.Message);
        Assert.Throws<MediatorDiTException>(() => d.QSample(x, [1], x));
        Assert.Throws<MediatorDiTException>(() => d.QSample(x, [1, 10], x));
    }

    [Fact]
    public void TimestepsReachTheNetworkMappedToTheOriginalProcess()
    {
        var d = GaussianDiffusion.Create("10");
        var seen = new List<int>();
        NoisePredictor recorder = (input, t) =>
        {
            seen.AddRange(t);
            return new Tensor(input.Dim(0), 2 * input.Dim(1), input.Dim(2), input.Dim(3));
        };
        d.DdimSampleLoop(recorder, [1, 2, 2, 2], new GaussianNoiseSource(3));
        Assert.Equal(new[] { 999, 888, 777, 666, 555, 444, 333, 222, 111, 0 }, seen);
    }

    /// <summary>
    /// The loss gradient against central differences of the float32 losses: the mean channels carry only
    /// the MSE's gradient (the official stop-gradient), the variance channels the bound's.
    /// </summary>
    [Theory]
    [InlineData(GaussianLossType.Mse)]
    [InlineData(GaussianLossType.RescaledMse)]
    public void TrainingLossGradientMatchesFiniteDifferences(GaussianLossType lossType)
    {
        const int batch = 3, c = 2, h = 3, w = 3, per = c * h * w;
        var full = GaussianDiffusion.Create("");
        var d = new GaussianDiffusion(full.Betas, lossType: lossType);
        int[] t = [0, 7, 640];
        var xStart = Tensor.FromArray(TestData.Gaussian(batch * per, 41, 0.6f), batch, c, h, w);
        xStart.Span[0] = 1f;
        xStart.Span[1] = -1f;
        var noise = Tensor.FromArray(TestData.Gaussian(batch * per, 42), batch, c, h, w);
        var output = new Tensor(batch, 2 * c, h, w);
        var extra = TestData.Gaussian(output.Length, 43, 0.5f);
        for (int b = 0; b < batch; b++)
        for (int i = 0; i < 2 * per; i++)
            output.Span[b * 2 * per + i] = i < per ? noise.Span[b * per + i] + extra[b * 2 * per + i] : Math.Clamp(extra[b * 2 * per + i], -0.9f, 0.9f);
        NoisePredictor frozen = (_, _) => output;

        var result = d.TrainingLosses(frozen, xStart, t, noise, computeOutputGradient: true);
        var gradient = result.OutputGradient!;
        const float step = 1e-2f;
        var numeric = new float[output.Length];
        for (int k = 0; k < output.Length; k++)
        {
            bool meanChannel = k % (2 * per) < per;
            float saved = output.Span[k];
            output.Span[k] = saved + step;
            var plus = d.TrainingLosses(frozen, xStart, t, noise);
            output.Span[k] = saved - step;
            var minus = d.TrainingLosses(frozen, xStart, t, noise);
            output.Span[k] = saved;
            double Objective(GaussianTrainingLosses l) => meanChannel ? l.Mse.Average(v => (double)v) : l.MeanLoss;
            numeric[k] = (float)((Objective(plus) - Objective(minus)) / (2 * step));
        }
        float scale = TestData.MaxAbs(numeric);
        Assert.True(scale > 0);
        // The decoder term at t = 0 must be live (not floored), so its branch is really exercised.
        Assert.True(TestData.MaxAbs(gradient.Span.Slice(per, per)) > 0.05f * TestData.MaxAbs(gradient.Span.Slice(3 * per, per)));
        for (int k = 0; k < output.Length; k++)
            Assert.True(Math.Abs(numeric[k] - gradient.Span[k]) <= 2e-3f * scale + 1e-5f,
                $"output element {k}: analytic {gradient.Span[k]:G5}, numeric {numeric[k]:G5}.");
    }

    [Fact]
    public void RescaledLossScalesTheBoundByStepsOverThousand()
    {
        var betas = BetaSchedules.Named(BetaSchedules.Linear, 500);
        var plain = new GaussianDiffusion(betas, lossType: GaussianLossType.Mse);
        var rescaled = new GaussianDiffusion(betas, lossType: GaussianLossType.RescaledMse);
        var x = Tensor.FromArray(TestData.Gaussian(2 * 8, 51, 0.5f), 2, 2, 2, 2);
        var noise = Tensor.FromArray(TestData.Gaussian(2 * 8, 52), 2, 2, 2, 2);
        var output = Tensor.FromArray(TestData.Gaussian(2 * 16, 53, 0.5f), 2, 4, 2, 2);
        NoisePredictor frozen = (_, _) => output;
        var a = plain.TrainingLosses(frozen, x, [3, 200], noise);
        var b = rescaled.TrainingLosses(frozen, x, [3, 200], noise);
        for (int i = 0; i < 2; i++) Assert.Equal(a.Vb![i] * 0.5f, b.Vb![i], 6);
        Assert.Equal(a.Mse, b.Mse);
    }
}
