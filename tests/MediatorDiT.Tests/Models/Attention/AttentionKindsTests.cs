using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.Models;

/// <summary>The attention-kind registry: one spec per enum member, and each spec's answers against the code that uses them.</summary>
public class AttentionKindsTests
{
    private static readonly ModelConfig Small = new()
    {
        InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 2, NumHeads = 2, NumClasses = 3,
        Attention = AttentionKind.Mediator, MediatorNum = 4,
    };

    [Fact]
    public void NamesAndCountsComeFromTheConfig()
    {
        var mediator = new ModelConfig { Attention = AttentionKind.Mediator, MediatorNum = 16 };
        var full = mediator with { Attention = AttentionKind.Full };
        Assert.Equal(("16 mediators", "m16", 16), (AttentionKinds.Describe(mediator), AttentionKinds.ShortName(mediator), AttentionKinds.MediatorCount(mediator)));
        Assert.Equal(("full attention", "full", 0), (AttentionKinds.Describe(full), AttentionKinds.ShortName(full), AttentionKinds.MediatorCount(full)));
        Assert.Equal("mediator attention (16 mediators)", AttentionKinds.For(mediator).Title(mediator));
        Assert.Equal("full attention", AttentionKinds.For(full).Title(full));
    }

    [Fact]
    public void EveryEnumMemberHasOneSpecThatBuildsItsModule()
    {
        var members = Enum.GetValues<AttentionKind>();
        Assert.Equal(members.Length, AttentionKinds.All.Count);
        Assert.Equal(members.Order(), AttentionKinds.All.Select(s => s.Kind).Order());
        foreach (var kind in members)
        {
            var spec = AttentionKinds.For(kind);
            Assert.Equal(kind, spec.Kind);
            var module = spec.Create("blocks.0.attn.", Small with { Attention = kind });
            Assert.Equal(spec.Name, module.Kind);
            // The marker key is one of the module's own parameters.
            Assert.Contains("blocks.0." + spec.MarkerKey, module.Parameters.Select(p => p.Name));
        }
        Assert.Equal(["full", "mediator"], members.Select(k => AttentionKinds.For(k).Name));
        Assert.IsType<FullAttention>(AttentionKinds.For(AttentionKind.Full).Create("attn.", Small));
        Assert.IsType<MediatorAttention>(AttentionKinds.For(AttentionKind.Mediator).Create("attn.", Small));
        Assert.IsType<MediatorAttention>(new SiTModel(Small).Blocks[0].Attention);
        Assert.IsType<FullAttention>(new SiTModel(Small with { Attention = AttentionKind.Full }).Blocks[0].Attention);
    }

    [Fact]
    public void AValueThatIsNoMemberIsRefusedInOneSentence()
    {
        var e = Assert.Throws<MediatorDiTException>(() => (Small with { Attention = (AttentionKind)7 }).Validate("c.json"));
        Assert.Equal("c.json: attention must be one of Full, Mediator, got 7.", e.Message);
        Assert.Throws<MediatorDiTException>(() => AttentionKinds.For((AttentionKind)7));
    }

    [Theory]
    // SiT-S/2 at 256 px: N = 256 tokens, D = 384. Full: qkv + proj 4 N D^2 = 150,994,944; Q K^T + A V
    // 2 N^2 D = 50,331,648. 16 mediators: pooling 16^2 D = 98,304, bias maps 2*4*6*16*N = 196,608,
    // four products 4*16*N*D = 6,291,456, depthwise conv 9 N D = 884,736.
    [InlineData(0, 50_331_648, 201_326_592, 50_331_648)]
    [InlineData(16, 7_471_104, 158_466_048, 6_291_456)]
    public void FlopsAgreeWithTheFlopCounter(int mediators, double mixing, double perBlock, double products)
    {
        var config = ModelRegistry.Get("SiT-S/2", 256, mediators);
        var spec = AttentionKinds.For(config);
        Assert.Equal(mixing, spec.MixingFlops(config).Sum(p => p.Flops));
        Assert.Equal(perBlock, spec.FlopsPerBlock(config));
        Assert.Equal(products, spec.ProductFlops(config));
        Assert.Equal(perBlock, FlopCounter.AttentionFlopsPerBlock(config));
        Assert.Equal(products, FlopCounter.AttentionProductFlopsPerBlock(config));

        // The report lists qkv, the kind's parts and the output projection, each over all 12 blocks.
        var report = FlopCounter.Count(config);
        var names = report.Components.Select(c => c.Name).ToList();
        int qkv = names.IndexOf("qkv projection");
        var attention = report.Components.Skip(qkv).Take(spec.MixingFlops(config).Count + 2).ToArray();
        Assert.Equal("output projection", attention[^1].Name);
        Assert.Equal(spec.MixingFlops(config).Select(p => p.Name), attention[1..^1].Select(c => c.Name));
        Assert.Equal(config.Depth * perBlock, attention.Sum(c => c.Flops));
        double rest = report.Components.Where(c => !attention.Contains(c)).Sum(c => c.Flops);
        Assert.Equal(report.Total, rest + config.Depth * perBlock);
    }

    [Theory]
    [InlineData(AttentionKind.Mediator, 4)]
    [InlineData(AttentionKind.Mediator, 16)]
    [InlineData(AttentionKind.Full, 64)]
    public void InferenceRoundTripsAConfigThroughItsStateDict(AttentionKind kind, int mediators)
    {
        var config = Small with { Attention = kind, MediatorNum = mediators };
        var state = StateDict.FromParameters(new SiTModel(config));
        Assert.Same(AttentionKinds.For(kind), AttentionKinds.Recognise(state));
        // Full attention's weights do not show its heads; mediator attention's an_bias does.
        int? heads = kind == AttentionKind.Full ? config.NumHeads : null;
        Assert.Equal(config, ModelConfigInference.Infer(state, config.Family, "m.safetensors", heads));

        var shown = AttentionKinds.For(kind).ReadShapes(state, "m.safetensors");
        Assert.Equal(kind == AttentionKind.Full ? AttentionShapes.None : new AttentionShapes(2, mediators, "the mediator biases"), shown);
    }

    [Fact]
    public void AStateDictWithNoKindsMarkerIsNamed()
    {
        var state = StateDict.FromParameters(new SiTModel(Small));
        foreach (var key in state.Keys.Where(k => k.StartsWith("blocks.0.attn.")).ToArray()) state.Remove(key);
        Assert.Null(AttentionKinds.Recognise(state));
        var e = Assert.Throws<MediatorDiTException>(() => ModelConfigInference.Infer(state, ModelFamily.SiT, "m.pt"));
        Assert.Equal("m.pt: block 0 has neither 'blocks.0.attn.qkv.weight' (full attention) nor 'blocks.0.attn.an_bias' (mediator attention).", e.Message);
    }

    [Fact]
    public void ValidationRejectsABadMediatorCountNamingTheKey()
    {
        var spec = AttentionKinds.For(AttentionKind.Mediator);
        Assert.Equal("mediator_num must be a perfect square (1, 4, 9, 16, 64, ...), got 12.", spec.Validate(Small with { MediatorNum = 12 }));
        Assert.Equal("mediator_num must be a perfect square (1, 4, 9, 16, 64, ...), got 0.", spec.Validate(Small with { MediatorNum = 0 }));
        Assert.Equal("mediator_num must be at most 65536, got 66049.", spec.Validate(Small with { MediatorNum = 257 * 257 }));
        Assert.Null(spec.Validate(Small));
        var e = Assert.Throws<MediatorDiTException>(() => (Small with { MediatorNum = 12 }).Validate("c.json"));
        Assert.Equal("c.json: mediator_num must be a perfect square (1, 4, 9, 16, 64, ...), got 12.", e.Message);

        // Full attention ignores mediator_num.
        Assert.Null(AttentionKinds.For(AttentionKind.Full).Validate(Small with { Attention = AttentionKind.Full, MediatorNum = 12 }));
        _ = (Small with { Attention = AttentionKind.Full, MediatorNum = 12 }).Validate();
    }

    [Fact]
    public void OnlyKindsWithMediatorsResizeTheirWeightsToAnotherGrid()
    {
        var state = StateDict.FromParameters(new SiTModel(Small));
        var resized = ResolutionResize.Interpolate(state, Small with { InputSize = 16 });
        // Grid 4 -> 8: the row/column biases follow the grid; the 7x7 maps and the projections do not.
        Assert.Equal([1, 2, 4, 8, 1], resized["blocks.0.attn.ah_bias"].Shape);
        Assert.Equal([1, 2, 1, 8, 4], resized["blocks.0.attn.wa_bias"].Shape);
        Assert.Same(state["blocks.0.attn.an_bias"], resized["blocks.0.attn.an_bias"]);
        Assert.Same(state["blocks.0.attn.qkv.weight"], resized["blocks.0.attn.qkv.weight"]);
        foreach (var (key, tensor) in state)
            Assert.Null(AttentionKinds.For(AttentionKind.Full).ResizeToGrid(key, tensor, 8));
    }

    [Fact]
    public void MediatorOptionsSelectTheKind()
    {
        var full = AttentionKinds.WithMediators(Small, null);
        Assert.Equal((AttentionKind.Full, 4), (full.Attention, full.MediatorNum));
        var m16 = AttentionKinds.WithMediators(full, 16);
        Assert.Equal((AttentionKind.Mediator, 16), (m16.Attention, m16.MediatorNum));
        Assert.Equal(AttentionKind.Full, ModelRegistry.Get("SiT-S/2", 256, 0).Attention);
        Assert.Equal(64, ModelRegistry.Get("SiT-S/2", 256, 0).MediatorNum);
    }
}
