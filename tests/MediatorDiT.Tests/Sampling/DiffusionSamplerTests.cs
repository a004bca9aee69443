using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>sample.py's guided sampling: doubled batch, null labels, forward_with_cfg, conditional half returned.</summary>
public class DiffusionSamplerTests
{
    /// <summary>DiT's sampling of one model through the common sampler interface; steps receives the steps done after each step.</summary>
    internal static Tensor Sample(GaussianDiffusion diffusion, SiTModel model, Tensor z, int[] classes, ClassifierFreeGuidance? guidance,
        INoiseSource noise, bool ddim = false, float eta = 0f, List<int>? steps = null) =>
        new DiffusionSampler(diffusion, ddim, eta).Sample(ModelLadder.FromModel(model, guidance), z, classes, noise,
            progress: steps is null ? null : new ListProgress(steps)).Samples;

    internal static Tensor Sample(GaussianDiffusion diffusion, SiTModel model, Tensor z, int[] classes, float scale,
        INoiseSource noise, bool ddim = false, float eta = 0f, List<int>? steps = null) =>
        Sample(diffusion, model, z, classes, scale > 1f ? ClassifierFreeGuidance.ForModel(scale, model.Config.InChannels) : null, noise, ddim, eta, steps);

    private sealed class ListProgress(List<int> steps) : IProgress<SamplingProgress>
    {
        public void Report(SamplingProgress value) => steps.Add(value.StepsDone);
    }

    [Fact]
    public void GuidedSamplingRunsTheDoubledBatchAndReturnsTheConditionalHalf()
    {
        var model = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        var diffusion = GaussianDiffusion.Create("3");
        var z = Tensor.FromArray(TestData.Gaussian(2 * 4 * 16 * 16, 61), 2, 4, 16, 16);
        int[] classes = [3, 7];

        var draws = Tensor.FromArray(TestData.Gaussian(3 * 4 * 4 * 16 * 16, 62), 3, 4, 4, 16, 16);
        var steps = new List<int>();
        var guided = Sample(diffusion, model, z, classes, 4f, new ReplayNoiseSource(draws), steps: steps);
        Assert.Equal([2, 4, 16, 16], guided.Shape);
        Assert.Equal([1, 2, 3], steps);

        var doubled = new Tensor(4, 4, 16, 16);
        z.Span.CopyTo(doubled.Span);
        z.Span.CopyTo(doubled.Span[z.Length..]);
        var manual = diffusion.PSampleLoop(DitNoisePredictors.Guided(model, [3, 7, 10, 10], ClassifierFreeGuidance.Official(4f)), doubled,
            new ReplayNoiseSource(draws), clipDenoised: false);
        Assert.Equal(manual.Span[..z.Length].ToArray(), guided.Span.ToArray());
    }

    [Fact]
    public void WithoutGuidanceTheConditionalNetworkIsUsed()
    {
        var model = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        var diffusion = GaussianDiffusion.Create("ddim4");
        var z = Tensor.FromArray(TestData.Gaussian(4 * 16 * 16, 63), 1, 4, 16, 16);
        var plain = Sample(diffusion, model, z, [5], 1f, new GaussianNoiseSource(9), ddim: true);
        var manual = diffusion.DdimSampleLoop(DitNoisePredictors.Conditional(model, [5]), z, new GaussianNoiseSource(9), clipDenoised: false);
        Assert.Equal(manual.Span.ToArray(), plain.Span.ToArray());
        Assert.Contains("class label 10", Assert.Throws<MediatorDiTException>(() =>
            Sample(diffusion, model, z, [10], 4f, new GaussianNoiseSource(9))).Message);
    }

    /// <summary>
    /// The fixture's draws of its 10-step chain: noise_draws holds p_sample's draw, DDIM's, then one per
    /// chain step (the last at t = 0, multiplied by a zero mask but drawn all the same).
    /// </summary>
    internal static Tensor ChainDraws(SafeTensorsFile io, int count = 10)
    {
        var all = io.GetFloat("noise_draws");
        int per = all.Length / all.Dim(0);
        Assert.Equal(12, all.Dim(0));
        var draws = new Tensor([count, .. all.Shape[1..]]);
        all.Span.Slice(2 * per, count * per).CopyTo(draws.Span);
        return draws;
    }

    [Fact]
    public void ReplayedDrawsReproduceTheOfficialTenStepChain()
    {
        var io = SafeTensors.Read(Fixtures.PathOf("dit_diffusion.io.safetensors"));
        var model = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        int[] y = io.GetInt64("y").Select(v => checked((int)v)).ToArray();
        var noise = new ReplayNoiseSource(ChainDraws(io));
        var final = Sample(GaussianDiffusion.Create("10"), model, io.GetFloat("chain10.z"), y, 1f, noise);
        TestData.AssertClose(io.GetFloat("chain10.final").Span, final.Span, 1e-4f, "chain10.final");
        Assert.Equal(10, noise.Used);
    }

    [Fact]
    public void TooFewOrMisshapenDrawsAreRefusedBeforeTheFirstStep()
    {
        var io = SafeTensors.Read(Fixtures.PathOf("dit_diffusion.io.safetensors"));
        var model = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        int[] y = io.GetInt64("y").Select(v => checked((int)v)).ToArray();
        var z = io.GetFloat("chain10.z");
        var steps = new List<int>();
        var shortRun = Assert.Throws<MediatorDiTException>(() => Sample(GaussianDiffusion.Create("10"), model, z, y, 1f,
            new ReplayNoiseSource(ChainDraws(io, 9), "noise.safetensors"), steps: steps));
        Assert.Equal("noise.safetensors has 9 draws left but the run needs 10, one per step that adds noise.", shortRun.Message);
        // Guided, the state is the doubled batch, so draws of the plain batch do not fit.
        var doubled = Assert.Throws<MediatorDiTException>(() => Sample(GaussianDiffusion.Create("10"), model, z, y, 4f,
            new ReplayNoiseSource(ChainDraws(io)), steps: steps));
        Assert.Contains("draws of shape [3, 4, 16, 16] but the sampler's state is [6, 4, 16, 16]", doubled.Message);
        Assert.Empty(steps);
    }

    [Fact]
    public void DdimWithEtaTakesOneReplayedDrawPerStep()
    {
        var model = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        var diffusion = GaussianDiffusion.Create("ddim4");
        var z = Tensor.FromArray(TestData.Gaussian(2 * 4 * 16 * 16, 64), 2, 4, 16, 16);
        var draws = Tensor.FromArray(TestData.Gaussian(4 * 2 * 4 * 16 * 16, 65), 4, 2, 4, 16, 16);
        var noise = new ReplayNoiseSource(draws);
        var replayed = Sample(diffusion, model, z, [1, 2], 1f, noise, ddim: true, eta: 0.5f);
        Assert.Equal(4, noise.Used);
        var manual = diffusion.DdimSampleLoop(DitNoisePredictors.Conditional(model, [1, 2]), z, new ReplayNoiseSource(draws), eta: 0.5f, clipDenoised: false);
        Assert.Equal(manual.Span.ToArray(), replayed.Span.ToArray());
        // The draws matter at eta above 0: other draws give another sample.
        var other = Sample(diffusion, model, z, [1, 2], 1f, new GaussianNoiseSource(3), ddim: true, eta: 0.5f);
        Assert.NotEqual(other.Span.ToArray(), replayed.Span.ToArray());
    }

    [Fact]
    public void GuidanceFollowsTheModelsChannelsByDefault()
    {
        // A 4-channel DiT is guided on the official first 3 channels unless told otherwise.
        var model = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        var diffusion = GaussianDiffusion.Create("2");
        var z = Tensor.FromArray(TestData.Gaussian(4 * 16 * 16, 66), 1, 4, 16, 16);
        var draws = Tensor.FromArray(TestData.Gaussian(2 * 2 * 4 * 16 * 16, 67), 2, 2, 4, 16, 16);
        Tensor Run(ClassifierFreeGuidance? g) => Sample(diffusion, model, z, [4], g, new ReplayNoiseSource(draws));
        var byDefault = Sample(diffusion, model, z, [4], 3f, new ReplayNoiseSource(draws));
        Assert.Equal(Run(ClassifierFreeGuidance.Official(3f)).Span.ToArray(), byDefault.Span.ToArray());
        Assert.NotEqual(Run(ClassifierFreeGuidance.AllChannels(3f)).Span.ToArray(), byDefault.Span.ToArray());
        Assert.Contains("guidance is set for 5 channels but the model has only 4", Assert.Throws<MediatorDiTException>(() =>
            Run(new ClassifierFreeGuidance(3f, 5))).Message);
    }
}
