using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>Ladder validation (up front, naming the value), grouped evaluation and costs.</summary>
public class ModelLadderTests
{
    private static ModelConfig Small(int mediators) => new()
    {
        InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 1, NumHeads = 2,
        NumClasses = 10, MediatorNum = mediators,
    };

    private static SiTModel Random(ModelConfig config, ulong seed)
    {
        var model = new SiTModel(config);
        var rng = new RandomSource(seed);
        foreach (var p in model.Parameters)
            if (p.Trainable) rng.FillGaussian(p.Value.Span, 0, 0.2f);
        return model;
    }

    [Theory]
    [InlineData("hidden_size", "hidden_size 48 but model 1 has 32")]
    [InlineData("input_size", "input_size 16 but model 1 has 8")]
    [InlineData("num_classes", "num_classes 7 but model 1 has 10")]
    [InlineData("patch_size", "patch_size 4 but model 1 has 2")]
    [InlineData("in_channels", "in_channels 3 but model 1 has 4")]
    [InlineData("depth", "depth 2 but model 1 has 1")]
    public void ModelsThatDifferInSizeAreRefused(string field, string expected)
    {
        var other = field switch
        {
            "hidden_size" => Small(4) with { HiddenSize = 48 },
            "input_size" => Small(4) with { InputSize = 16 },
            "num_classes" => Small(4) with { NumClasses = 7 },
            "patch_size" => Small(4) with { PatchSize = 4 },
            "in_channels" => Small(4) with { InChannels = 3 },
            _ => Small(4) with { Depth = 2 },
        };
        var e = Assert.Throws<MediatorDiTException>(() => ModelLadder.FromModels([new SiTModel(Small(1)), new SiTModel(other)]));
        Assert.Contains($"ladder model 2 has {expected}", e.Message);
    }

    [Fact]
    public void MediatorCountsMustIncreaseAndBeMediators()
    {
        var e = Assert.Throws<MediatorDiTException>(() => ModelLadder.FromModels([new SiTModel(Small(4)), new SiTModel(Small(4))]));
        Assert.Contains("mediator_num 4, not more than model 1's 4", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => ModelLadder.FromModels([new SiTModel(Small(16)), new SiTModel(Small(4))]));
        Assert.Contains("mediator_num 4, not more than model 1's 16", e.Message);
        var full = Small(4) with { Attention = AttentionKind.Full };
        e = Assert.Throws<MediatorDiTException>(() => ModelLadder.FromModels([new SiTModel(full), new SiTModel(full with { MediatorNum = 16 })]));
        Assert.Contains("use mediator attention", e.Message);
        Assert.Contains("at least one model", Assert.Throws<MediatorDiTException>(() => ModelLadder.FromModels([])).Message);
        _ = ModelLadder.FromModel(new SiTModel(full)); // a single full-attention model is plain sampling
    }

    [Fact]
    public void SamplesOnDifferentModelsRunAsGroupsAndMatchSeparateCalls()
    {
        var models = new[] { Random(Small(1), 1), Random(Small(4), 2) };
        var counters = new List<CountingFunction>();
        var ladder = ModelLadder.FromModels(models).WithStages((_, s) => { var c = new CountingFunction(s); counters.Add(c); return c; });
        var x = new Tensor(TestData.Gaussian(3 * 256, 4), 3, 4, 8, 8);
        float[] t = [0.1f, 0.5f, 0.9f];
        int[] y = [1, 2, 3];
        var output = ladder.Evaluate(x, t, y, [0, 1, 0]);
        Assert.Equal([1, 1], counters.Select(c => c.Calls));
        Assert.Equal([2, 1], counters.Select(c => c.Rows));
        for (int s = 0; s < 3; s++)
        {
            var single = new Tensor(x.Span.Slice(s * 256, 256).ToArray(), 1, 4, 8, 8);
            var expected = models[s == 1 ? 1 : 0].Forward(single, [t[s]], [y[s]]);
            TestData.AssertClose(expected.Span, output.Span.Slice(s * 256, 256), 1e-5f, $"sample {s}");
        }
        ladder.Evaluate(x, t, y, [1, 1, 1]);
        Assert.Equal([1, 2], counters.Select(c => c.Calls));
    }

    [Fact]
    public void GuidedGroupsKeepEachSamplesTwoRowsTogether()
    {
        var models = new[] { Random(Small(1), 1), Random(Small(4), 2) };
        var guidance = ClassifierFreeGuidance.Official(2f);
        var ladder = ModelLadder.FromModels(models, guidance);
        // Two samples: rows [s0, s1, s0', s1'] with null labels in the second half.
        var x = new Tensor(TestData.Gaussian(4 * 256, 6), 4, 4, 8, 8);
        float[] t = [0.3f, 0.3f, 0.3f, 0.3f];
        int[] y = [4, 7, 10, 10];
        var output = ladder.Evaluate(x, t, y, [1, 0]);
        for (int s = 0; s < 2; s++)
        {
            var pair = new Tensor(2, 4, 8, 8);
            x.Span.Slice(s * 256, 256).CopyTo(pair.Span);
            x.Span.Slice((s + 2) * 256, 256).CopyTo(pair.Span[256..]);
            var expected = models[s == 0 ? 1 : 0].ForwardWithCfg(pair, [0.3f, 0.3f], [y[s], 10], 2f, 3);
            TestData.AssertClose(expected.Span[..256], output.Span.Slice(s * 256, 256), 1e-5f, $"sample {s} conditional row");
            TestData.AssertClose(expected.Span[256..], output.Span.Slice((s + 2) * 256, 256), 1e-5f, $"sample {s} unconditional row");
        }
    }

    [Fact]
    public void CostsAreTheFlopCountersPerImageDoubledUnderGuidance()
    {
        var configs = new[] { Small(1), Small(4), Small(16) };
        var plain = ModelLadder.FromModels(configs.Select(c => new SiTModel(c)).ToArray());
        var guided = ModelLadder.FromModels(configs.Select(c => new SiTModel(c)).ToArray(), ClassifierFreeGuidance.Official(4));
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(FlopCounter.Count(configs[i]).PerImage, plain.FlopsPerImage[i]);
            Assert.Equal(2 * FlopCounter.Count(configs[i]).PerImage, guided.FlopsPerImage[i]);
        }
        Assert.True(plain.FlopsPerImage[0] < plain.FlopsPerImage[1] && plain.FlopsPerImage[1] < plain.FlopsPerImage[2]);
        var wrapped = plain.WithStages((_, s) => new CountingFunction(s));
        Assert.Equal(plain.FlopsPerImage, wrapped.FlopsPerImage);
        Assert.Equal(plain.SampleShape, wrapped.SampleShape);
        Assert.Equal(10, wrapped.NumClasses);
    }

    [Fact]
    public void ALadderOfSeveralModelsNeedsASchedule()
    {
        var ladder = ModelLadder.FromModels([new SiTModel(Small(1)), new SiTModel(Small(4))]);
        var sampler = new SdeSampler(new MediatorDiT.Diffusion.Transport(), new SdeSamplerOptions { NumSteps = 3 });
        var e = Assert.Throws<MediatorDiTException>(() => sampler.Sample(ladder, new Tensor(1, 4, 8, 8), [0], new GaussianNoiseSource(1)));
        Assert.Contains("needs a schedule", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => sampler.Sample(ladder, new Tensor(1, 4, 8, 8), [0], new GaussianNoiseSource(1), new AdaptiveModelSchedule([0.9, 0.5], 3)));
        Assert.Contains("2 switch ratios but a ladder of 2 models needs 1", e.Message);
    }
}
