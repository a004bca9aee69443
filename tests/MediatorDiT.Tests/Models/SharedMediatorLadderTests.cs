using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Models;

public class SharedMediatorLadderTests
{
    private static readonly ModelConfig Config = new()
    {
        InputSize = 8, PatchSize = 2, HiddenSize = 32, Depth = 2, NumHeads = 2, NumClasses = 3, Attention = AttentionKind.Mediator,
    };

    [Fact]
    public void MembersShareEveryWeightButTheMediatorBiases()
    {
        var ladder = new SharedMediatorLadder(Config, [1, 4, 16]);
        var a = ladder.Members[0];
        var c = ladder.Members[2];
        Assert.Same(a["blocks.1.mlp.fc1.weight"].Value, c["blocks.1.mlp.fc1.weight"].Value);
        Assert.Same(a["blocks.0.attn.qkv.weight"].Grad, c["blocks.0.attn.qkv.weight"].Grad);
        Assert.NotSame(a["blocks.0.attn.an_bias"].Value, c["blocks.0.attn.an_bias"].Value);
        Assert.Equal([2, 16, 7, 7], c["blocks.0.attn.an_bias"].Value.Shape);
        // Distinct parameters: the shared ones once, plus 6 biases x depth x counts.
        int shared = a.Parameters.Count - 6 * Config.Depth;
        Assert.Equal(shared + 3 * 6 * Config.Depth, ladder.Parameters.Count);
        Assert.Contains("blocks.1.attn.m16.wa_bias", ladder.CombinedNames.Values);
    }

    [Fact]
    public void AMemberComputesWhatAStandaloneModelWithTheSameWeightsComputes()
    {
        var ladder = new SharedMediatorLadder(Config, [4, 16]);
        var rng = new RandomSource(5);
        foreach (var p in ladder.Parameters) rng.FillGaussian(p.Value.Span, 0, 0.1f);
        var member = ladder.Members[1];
        var standalone = new SiTModel(Config with { MediatorNum = 16 });
        foreach (var p in member.Parameters) p.Value.Span.CopyTo(standalone[p.Name].Value.Span);
        var x = new Tensor(2, 4, 8, 8);
        rng.FillGaussian(x.Span);
        var expected = standalone.Forward(x, [0.2f, 0.7f], [0, 2]);
        var actual = member.Forward(x, [0.2f, 0.7f], [0, 2]);
        Assert.Equal(expected.Span.ToArray(), actual.Span.ToArray());
    }

    [Fact]
    public void CountsMustIncrease()
    {
        Assert.Throws<MediatorDiTException>(() => new SharedMediatorLadder(Config, [16, 4]));
    }
}
