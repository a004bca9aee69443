using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Models;

/// <summary>Sampling mode (KeepActivations = false): blocks share one set of buffers and give the same output.</summary>
public class SharedActivationTests
{
    private static ModelConfig Tiny(int mediators) => new ModelConfig
    {
        InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 3, NumHeads = 2, MlpRatio = 4,
        NumClasses = 10, LearnSigma = true, Attention = mediators == 0 ? AttentionKind.Full : AttentionKind.Mediator,
        MediatorNum = mediators == 0 ? 64 : mediators,
    };

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void SharedBuffersGiveTheSameOutputAndBackwardRefuses(int mediators)
    {
        var model = new SiTModel(Tiny(mediators));
        var rng = new RandomSource(5);
        foreach (var p in model.Parameters)
            if (p.Trainable) rng.FillGaussian(p.Value.Span, 0, 0.1f);
        var x = new Tensor(2, 4, 8, 8);
        rng.FillGaussian(x.Span);
        float[] t = [0.3f, 0.8f];
        int[] y = [1, 7];
        var kept = model.Forward(x, t, y).Span.ToArray();

        model.KeepActivations = false;
        var shared = model.Forward(x, t, y).Span.ToArray();
        Assert.True(kept.AsSpan().SequenceEqual(shared), "sharing the block buffers changed the output");
        var error = Assert.Throws<MediatorDiTException>(() => model.Backward(new Tensor(2, 4, 8, 8)));
        Assert.Contains("KeepActivations", error.Message);

        model.KeepActivations = true;
        var again = model.Forward(x, t, y).Span.ToArray();
        Assert.True(kept.AsSpan().SequenceEqual(again));
        model.ZeroGrad();
        var dx = model.Backward(new Tensor(2, 4, 8, 8));
        Assert.Equal(x.Length, dx.Length);
    }
}
