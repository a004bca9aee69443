using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Diffusion.Gaussian;

/// <summary>sample.py's guided sampling: doubled batch, null labels, forward_with_cfg, conditional half returned.</summary>
public class DitSamplingTests
{
    [Fact]
    public void GuidedSamplingRunsTheDoubledBatchAndReturnsTheConditionalHalf()
    {
        var model = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        var diffusion = GaussianDiffusion.Create("3");
        var z = Tensor.FromArray(TestData.Gaussian(2 * 4 * 16 * 16, 61), 2, 4, 16, 16);
        int[] classes = [3, 7];

        var draws = Tensor.FromArray(TestData.Gaussian(3 * 4 * 4 * 16 * 16, 62), 3, 4, 4, 16, 16);
        var steps = new List<int>();
        var guided = DitSampling.Sample(diffusion, model, z, classes, 4f, new ReplayedDiffusionNoise(draws), onStep: steps.Add);
        Assert.Equal([2, 4, 16, 16], guided.Shape);
        Assert.Equal([2, 1, 0], steps);

        var doubled = new Tensor(4, 4, 16, 16);
        z.Span.CopyTo(doubled.Span);
        z.Span.CopyTo(doubled.Span[z.Length..]);
        var manual = diffusion.PSampleLoop(DitNoisePredictors.Guided(model, [3, 7, 10, 10], 4f), doubled,
            new ReplayedDiffusionNoise(draws), clipDenoised: false);
        Assert.Equal(manual.Span[..z.Length].ToArray(), guided.Span.ToArray());
    }

    [Fact]
    public void WithoutGuidanceTheConditionalNetworkIsUsed()
    {
        var model = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        var diffusion = GaussianDiffusion.Create("ddim4");
        var z = Tensor.FromArray(TestData.Gaussian(4 * 16 * 16, 63), 1, 4, 16, 16);
        var plain = DitSampling.Sample(diffusion, model, z, [5], 1f, new SeededDiffusionNoise(9), ddim: true);
        var manual = diffusion.DdimSampleLoop(DitNoisePredictors.Conditional(model, [5]), z, new SeededDiffusionNoise(9), clipDenoised: false);
        Assert.Equal(manual.Span.ToArray(), plain.Span.ToArray());
        Assert.Contains("class label 10", Assert.Throws<MediatorDiTException>(() =>
            DitSampling.Sample(diffusion, model, z, [10], 4f, new SeededDiffusionNoise(9))).Message);
    }
}
