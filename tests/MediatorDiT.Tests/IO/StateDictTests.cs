using MediatorDiT.IO;
using MediatorDiT.Nn;

namespace MediatorDiT.Tests.IO;

public class StateDictTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A model with the same parameter names and shapes as mediator_grid8_m16, in state-dict order.</summary>
    private static TestParameterSet ModelLike(string weightsFixture) =>
        new(SafeTensors.Read(Fixtures.PathOf(weightsFixture)).Tensors
            .Select(kv => new Parameter(kv.Key, kv.Value.Shape, trainable: kv.Key != "pos_embed")));

    [Fact]
    public void DetectsTheFormatFromContentNotExtension()
    {
        string safetensorsNamedPt = _dir.CopyFixture("mediator_grid4_m4.weights.safetensors", "weights.pt");
        string checkpointNamedSafetensors = _dir.CopyFixture("mediator_grid4_m4.checkpoint.pt", "checkpoint.safetensors");
        var a = StateDict.Load(safetensorsNamedPt);
        var b = StateDict.Load(checkpointNamedSafetensors);
        Assert.Equal(30, a.Count);
        Assert.Equal(a.Keys, b.Keys);
        Assert.All(a, kv => Assert.True(kv.Value.Bytes.Span.SequenceEqual(b[kv.Key].Bytes.Span)));
    }

    [Fact]
    public void NeitherFormatIsAClearError()
    {
        string path = _dir.File("image.png");
        File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10, 0, 0, 0, 13]);
        var error = Assert.Throws<MediatorDiTException>(() => StateDict.Load(path));
        Assert.Contains("image.png", error.Message);
        Assert.Contains("neither", error.Message);
        Assert.Contains("89504E47", error.Message);
    }

    [Fact]
    public void SafeTensorsWhoseLengthFieldLooksLikeAPickleIsStillSafeTensors()
    {
        // A header of 0x180 bytes puts 0x80 0x01 first, the way a pickle's PROTO opcode starts.
        string path = _dir.File("proto-like.safetensors");
        string json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        var bytes = new byte[8 + 0x180 + 4];
        bytes[0] = 0x80;
        bytes[1] = 0x01;
        System.Text.Encoding.ASCII.GetBytes(json.PadRight(0x180)).CopyTo(bytes, 8);
        BitConverter.GetBytes(1.5f).CopyTo(bytes, 8 + 0x180);
        File.WriteAllBytes(path, bytes);
        Assert.Equal([1.5f], StateDict.Load(path)["w"].ToFloat().Span.ToArray());
    }

    [Fact]
    public void KeyDoesNotApplyToSafeTensors()
    {
        string path = Fixtures.PathOf("mediator_grid4_m4.weights.safetensors");
        var error = Assert.Throws<MediatorDiTException>(() => StateDict.Load(path, "ema"));
        Assert.Contains(path, error.Message);
        Assert.Contains("'ema'", error.Message);
    }

    [Fact]
    public void LoadIntoFillsEveryParameterWithTheFileValues()
    {
        string path = Fixtures.PathOf("mediator_grid8_m16.weights.safetensors");
        var state = StateDict.Load(path);
        TestParameterSet model = ModelLike("mediator_grid8_m16.weights.safetensors");

        LoadReport report = StateDict.LoadInto(model, state, strict: true, path);

        Assert.True(report.IsComplete);
        Assert.Equal(48, report.Loaded.Count);
        foreach (Parameter p in model.Parameters)
            Assert.Equal(state[p.Name].ToFloat().Span.ToArray(), p.Value.Span.ToArray());
        Assert.Contains("loaded 48 of 48", report.ToString());
    }

    [Fact]
    public void StrictLoadWithAMissingKeyNamesFileAndKey()
    {
        var state = StateDict.Load(Fixtures.PathOf("mediator_grid4_m4.weights.safetensors"));
        state.Remove("blocks.0.attn.an_bias");
        state.Remove("final_layer.linear.bias");
        TestParameterSet model = ModelLike("mediator_grid4_m4.weights.safetensors");
        float before = model["x_embedder.proj.weight"].Value.Span[0];

        var error = Assert.Throws<MediatorDiTException>(() => StateDict.LoadInto(model, state, strict: true, "weights.safetensors"));

        Assert.StartsWith("weights.safetensors: ", error.Message);
        Assert.Contains("missing key 'blocks.0.attn.an_bias' [4, 4, 7, 7]", error.Message);
        Assert.Contains("2 keys missing in all: blocks.0.attn.an_bias, final_layer.linear.bias", error.Message);
        Assert.Equal(before, model["x_embedder.proj.weight"].Value.Span[0]); // nothing loaded
    }

    [Fact]
    public void StrictLoadWithAWrongShapeNamesKeyAndBothShapes()
    {
        var state = StateDict.Load(Fixtures.PathOf("mediator_grid8_m16.weights.safetensors"));
        var model = new TestParameterSet(ModelLike("mediator_grid8_m16.weights.safetensors").Parameters
            .Select(p => p.Name == "blocks.0.attn.qkv.weight" ? new Parameter(p.Name, [576, 192]) : p));

        var error = Assert.Throws<MediatorDiTException>(() => StateDict.LoadInto(model, state, strict: true, "weights.safetensors"));

        Assert.Equal("weights.safetensors: key 'blocks.0.attn.qkv.weight' has shape [192, 64] but the model expects [576, 192].", error.Message);
    }

    [Fact]
    public void StrictLoadWithAnUnexpectedKeyNamesIt()
    {
        var state = StateDict.Load(Fixtures.PathOf("mediator_grid4_m4.weights.safetensors"));
        state["blocks.9.extra"] = StoredTensor.FromFloat([1f, 2f], [2]);
        var error = Assert.Throws<MediatorDiTException>(() =>
            StateDict.LoadInto(ModelLike("mediator_grid4_m4.weights.safetensors"), state, strict: true, "ckpt.pt"));
        Assert.Contains("ckpt.pt", error.Message);
        Assert.Contains("unexpected key 'blocks.9.extra' [2]", error.Message);
    }

    [Fact]
    public void NonStrictLoadReportsAndLoadsOnlyWhatMatches()
    {
        var state = new Dictionary<string, StoredTensor>
        {
            ["a"] = StoredTensor.FromFloat([1f, 2f], [2]),
            ["b"] = StoredTensor.FromFloat([1f, 2f, 3f], [3], DType.BF16), // model wants [2]
            ["extra"] = StoredTensor.FromFloat([9f], [1]),
        };
        var model = new TestParameterSet(("a", [2]), ("b", [2]), ("c", [4]));
        model["b"].Value.Span.Fill(-1f);

        LoadReport report = StateDict.LoadInto(model, state, strict: false, "partial.safetensors");

        Assert.Equal(["a"], report.Loaded);
        Assert.Equal(["c"], report.Missing);
        Assert.Equal(["extra"], report.Unexpected);
        ShapeMismatch mismatch = Assert.Single(report.Mismatched);
        Assert.Equal("b", mismatch.Name);
        Assert.Equal([2], mismatch.Expected);
        Assert.Equal([3], mismatch.Found);
        Assert.False(report.IsComplete);
        Assert.Equal([1f, 2f], model["a"].Value.Span.ToArray());
        Assert.Equal([-1f, -1f], model["b"].Value.Span.ToArray()); // mismatched shapes are never loaded
        Assert.Equal(
            "partial.safetensors: loaded 1 of 3 parameters; 1 missing (c); 1 unexpected (extra); 1 with the wrong shape ('b' has shape [3] but the model expects [2]).",
            report.ToString());
    }

    [Fact]
    public void FromParametersRoundTripsThroughSafeTensorsIncludingFrozenOnes()
    {
        var model = new TestParameterSet(new[]
        {
            new Parameter("pos_embed", [1, 4, 2], trainable: false),
            new Parameter("w", [2, 3]),
        });
        for (int i = 0; i < 8; i++) model["pos_embed"].Value.Span[i] = i * 0.5f;
        for (int i = 0; i < 6; i++) model["w"].Value.Span[i] = -i;

        string path = _dir.File("saved.safetensors");
        SafeTensors.Write(path, StateDict.FromParameters(model), new Dictionary<string, string> { ["step"] = "7" });
        var copy = new TestParameterSet(("pos_embed", [1, 4, 2]), ("w", [2, 3]));
        LoadReport report = StateDict.LoadInto(copy, StateDict.Load(path), strict: true, path);

        Assert.True(report.IsComplete);
        Assert.Equal(model["pos_embed"].Value.Span.ToArray(), copy["pos_embed"].Value.Span.ToArray());
        Assert.Equal(model["w"].Value.Span.ToArray(), copy["w"].Value.Span.ToArray());
    }

    [Fact]
    public void FromParametersInBFloat16HalvesTheBytesAndRounds()
    {
        var model = new TestParameterSet(("w", [3]));
        model["w"].Value.Span[0] = 1.00390625f; // a bf16 tie: rounds to even, 1
        model["w"].Value.Span[1] = 3f;
        model["w"].Value.Span[2] = -0.5f;
        StoredTensor stored = StateDict.FromParameters(model, DType.BF16)["w"];
        Assert.Equal(DType.BF16, stored.DType);
        Assert.Equal(6, stored.Bytes.Length);
        Assert.Equal([1f, 3f, -0.5f], stored.ToFloat().Span.ToArray());
    }
}
