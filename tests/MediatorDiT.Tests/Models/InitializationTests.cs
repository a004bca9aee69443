using MediatorDiT.Models;

namespace MediatorDiT.Tests.Models;

public class InitializationTests
{
    [Fact]
    public void OfficialInitZeroesAdaLnAndOutputSoTheModelStartsAtZero()
    {
        var config = new ModelConfig { InputSize = 8, PatchSize = 2, HiddenSize = 32, Depth = 2, NumHeads = 2, NumClasses = 4, MediatorNum = 4 };
        var model = new SiTModel(config);
        ModelInitializer.Initialize(model, seed: 7);
        Assert.All(model.Parameters.Where(p => p.Name.Contains("adaLN_modulation") || p.Name.StartsWith("final_layer.linear")),
            p => Assert.True(p.Value.Span.ToArray().All(v => v == 0), p.Name));
        var qkv = model["blocks.0.attn.qkv.weight"].Value.Span.ToArray();
        float bound = MathF.Sqrt(6f / (32 + 96));
        Assert.True(qkv.All(v => Math.Abs(v) <= bound) && qkv.Max() > bound * 0.9f, "qkv weight should be xavier-uniform");
        var an = model["blocks.0.attn.an_bias"].Value.Span.ToArray();
        double std = Math.Sqrt(an.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.015, 0.025);

        var x = new MediatorDiT.Tensors.Tensor(2, 4, 8, 8);
        new MediatorDiT.Tensors.RandomSource(1).FillGaussian(x.Span);
        var output = model.Forward(x, [0.3f, 0.9f], [1, 4]);
        Assert.True(output.Span.ToArray().All(v => v == 0), "adaLN-Zero: a freshly initialised model outputs zeros");
    }

    [Fact]
    public void SameSeedGivesSameWeights()
    {
        var config = new ModelConfig { InputSize = 8, PatchSize = 2, HiddenSize = 32, Depth = 1, NumHeads = 2, NumClasses = 4, MediatorNum = 4 };
        var a = new SiTModel(config);
        var b = new SiTModel(config);
        ModelInitializer.Initialize(a, 3);
        ModelInitializer.Initialize(b, 3);
        foreach (var p in a.Parameters) Assert.Equal(p.Value.Span.ToArray(), b[p.Name].Value.Span.ToArray());
    }
}
