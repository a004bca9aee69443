using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Models;

/// <summary>
/// The network against the authors' PyTorch code on the golden fixtures: outputs, every block,
/// the first attention module, guided output, and every gradient.
/// Forward tolerance 1e-4 * max(1, max|ref|); gradients 1e-3 * max(1, max|ref|).
/// </summary>
public class FixtureParityTests
{
    public static TheoryData<string> SiTCases => new() { "mediator_grid8_m16", "mediator_grid4_m4", "full_grid8" };

    private const float ForwardTol = 1e-4f, GradTol = 1e-3f;

    internal static SiTModel LoadModel(string weightsFile)
    {
        var file = SafeTensors.Read(Fixtures.PathOf(weightsFile));
        var config = ModelConfig.FromJson(file.Metadata["config"], weightsFile);
        var model = new SiTModel(config);
        StateDict.LoadInto(model, file.Tensors, strict: true, weightsFile);
        return model;
    }

    private static int[] Labels(SafeTensorsFile io, string key) => io.GetInt64(key).Select(v => (int)v).ToArray();

    private static float[] Times(SafeTensorsFile io, string key) =>
        io.Tensors[key].DType == DType.I64 ? io.GetInt64(key).Select(v => (float)v).ToArray() : io.GetFloat(key).Span.ToArray();

    [Theory]
    [MemberData(nameof(SiTCases))]
    public void ForwardMatchesOfficialOutputsAndEveryBlock(string name)
    {
        var model = LoadModel($"{name}.weights.safetensors");
        var io = SafeTensors.Read(Fixtures.PathOf($"{name}.io.safetensors"));
        model.RecordBlockOutputs = true;
        var output = model.Forward(io.GetFloat("x"), Times(io, "t"), Labels(io, "y"));

        Assert.Equal(io.GetFloat("out").Shape, output.Shape);
        TestData.AssertClose(io.GetFloat("out").Span, output.Span, ForwardTol, $"{name} out");
        for (int i = 0; i < model.Blocks.Count; i++)
            TestData.AssertClose(io.GetFloat($"block{i}.out").Span, model.BlockOutputs[i].Span, ForwardTol, $"{name} block{i}.out");
        TestData.AssertClose(io.GetFloat("block0.attn.out").Span, model.Blocks[0].AttentionOutput.Span, ForwardTol, $"{name} block0.attn.out");
    }

    [Theory]
    [MemberData(nameof(SiTCases))]
    public void AttentionModuleAloneMatchesOnTheRecordedInput(string name)
    {
        var model = LoadModel($"{name}.weights.safetensors");
        var io = SafeTensors.Read(Fixtures.PathOf($"{name}.io.safetensors"));
        var input = io.GetFloat("block0.attn.in");
        int b = input.Dim(0), n = input.Dim(1), d = input.Dim(2);
        var rows = input.Reshape(b * n, d);
        var output = new Tensor(b * n, d);
        model.Blocks[0].Attention.Forward(rows, output, b);
        TestData.AssertClose(io.GetFloat("block0.attn.out").Span, output.Span, ForwardTol, $"{name} attention module");
    }

    [Theory]
    [MemberData(nameof(SiTCases))]
    public void GuidedForwardMatchesOfficialThreeChannelGuidance(string name)
    {
        var model = LoadModel($"{name}.weights.safetensors");
        var io = SafeTensors.Read(Fixtures.PathOf($"{name}.io.safetensors"));
        var output = model.ForwardWithCfg(io.GetFloat("cfg.x"), Times(io, "cfg.t"), Labels(io, "cfg.y"), 4.0f, guidedChannels: 3);
        TestData.AssertClose(io.GetFloat("cfg.out").Span, output.Span, ForwardTol, $"{name} cfg.out");
    }

    [Theory]
    [MemberData(nameof(SiTCases))]
    public void BackwardMatchesEveryOfficialGradient(string name)
    {
        var model = LoadModel($"{name}.weights.safetensors");
        var io = SafeTensors.Read(Fixtures.PathOf($"{name}.io.safetensors"));
        model.Forward(io.GetFloat("x"), Times(io, "t"), Labels(io, "y"));
        model.ZeroGrad();
        var dx = model.Backward(io.GetFloat("grad_out"));
        TestData.AssertClose(io.GetFloat("grad.x").Span, dx.Span, GradTol, $"{name} grad.x");

        var gradKeys = io.Tensors.Keys.Where(k => k.StartsWith("grad.") && k != "grad.x").ToHashSet();
        var trainable = model.Parameters.Where(p => p.Trainable).ToList();
        Assert.Equal(gradKeys.OrderBy(k => k), trainable.Select(p => "grad." + p.Name).OrderBy(k => k));
        foreach (var p in trainable)
            TestData.AssertClose(io.GetFloat("grad." + p.Name).Span, p.Grad!.Span, GradTol, $"{name} grad.{p.Name}");
    }

    [Theory]
    [MemberData(nameof(SiTCases))]
    public void CheckpointAndSafetensorsLoadIdenticalWeights(string name)
    {
        var fromSafetensors = LoadModel($"{name}.weights.safetensors");
        var fromCheckpoint = new SiTModel(fromSafetensors.Config);
        StateDict.LoadInto(fromCheckpoint, TorchFile.LoadStateDict(Fixtures.PathOf($"{name}.checkpoint.pt"), "model"), strict: true, name);
        foreach (var p in fromSafetensors.Parameters)
            Assert.Equal(p.Value.Span.ToArray(), fromCheckpoint[p.Name].Value.Span.ToArray());
        var fromEma = new SiTModel(fromSafetensors.Config);
        StateDict.LoadInto(fromEma, TorchFile.LoadStateDict(Fixtures.PathOf($"{name}.checkpoint.pt"), "ema"), strict: true, name);
        foreach (var p in fromSafetensors.Parameters)
            Assert.Equal(p.Value.Span.ToArray(), fromEma[p.Name].Value.Span.ToArray());
    }

    [Fact]
    public void GeneratedPositionEmbeddingEqualsTheOfficialTable()
    {
        var file = SafeTensors.Read(Fixtures.PathOf("mediator_grid8_m16.weights.safetensors"));
        var model = new SiTModel(ModelConfig.FromJson(file.Metadata["config"], "config"));
        TestData.AssertClose(file.GetFloat("pos_embed").Span, model.PosEmbed.Value.Span, 1e-6f, "pos_embed");
    }

    [Fact]
    public void DiTForwardReturnsAllChannelsAndMatches()
    {
        var model = LoadModel("dit_model.weights.safetensors");
        Assert.Equal(ModelFamily.DiT, model.Config.Family);
        var io = SafeTensors.Read(Fixtures.PathOf("dit_model.io.safetensors"));
        var output = model.Forward(io.GetFloat("x"), Times(io, "t"), Labels(io, "y"));
        Assert.Equal(io.GetFloat("out").Shape, output.Shape);
        TestData.AssertClose(io.GetFloat("out").Span, output.Span, ForwardTol, "dit out");
        var guided = model.ForwardWithCfg(io.GetFloat("cfg.x"), Times(io, "cfg.t"), Labels(io, "cfg.y"), 4.0f, guidedChannels: 3);
        TestData.AssertClose(io.GetFloat("cfg.out").Span, guided.Span, ForwardTol, "dit cfg.out");
    }

    [Fact]
    public void DiTBareStateDictCheckpointLoads()
    {
        var fromSafetensors = LoadModel("dit_model.weights.safetensors");
        var fromPt = new SiTModel(fromSafetensors.Config);
        StateDict.LoadInto(fromPt, TorchFile.LoadStateDict(Fixtures.PathOf("dit_model.pt")), strict: true, "dit_model.pt");
        foreach (var p in fromSafetensors.Parameters)
            Assert.Equal(p.Value.Span.ToArray(), fromPt[p.Name].Value.Span.ToArray());
    }
}
