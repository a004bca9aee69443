using System.Text.Json;
using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.Models;

/// <summary>Configs read off state dicts: every fixture case against its manifest, and the released DiT/SiT-XL/2 shapes.</summary>
public class ModelConfigInferenceTests
{
    [Theory]
    [InlineData("mediator_grid8_m16", "manifest.json", null)]
    [InlineData("mediator_grid4_m4", "manifest.json", null)]
    [InlineData("full_grid8", "manifest.json", 4)]
    [InlineData("dit_model", "manifest.dit.json", 4)]
    public void FixtureWeightsGiveTheirManifestConfig(string name, string manifest, int? heads)
    {
        var state = SafeTensors.Read(Fixtures.PathOf(name + ".weights.safetensors")).Tensors;
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.PathOf(manifest)));
        var expected = ModelConfig.FromJson(doc.RootElement.GetProperty(name).GetProperty("config").GetRawText(), manifest);
        var inferred = ModelConfigInference.Infer(state, expected.Family, name, heads);
        // class_dropout_prob is a training option that no shape shows, mediator_num means nothing for full
        // attention; the rest must agree.
        int mediators = expected.Attention == AttentionKind.Full ? inferred.MediatorNum : expected.MediatorNum;
        Assert.Equal(expected with { ClassDropoutProb = inferred.ClassDropoutProb, MediatorNum = mediators }, inferred);
    }

    [Theory]
    [InlineData(256, 32)]
    [InlineData(512, 64)]
    public void TheReleasedXl2ShapesGiveDitXl2(int imageSize, int latent)
    {
        int grid = latent / 2;
        var state = Shapes(new()
        {
            ["pos_embed"] = [1, grid * grid, 1152],
            ["x_embedder.proj.weight"] = [1152, 4, 2, 2],
            ["y_embedder.embedding_table.weight"] = [1001, 1152],
            ["final_layer.linear.weight"] = [32, 1152],
        }, depth: 28, hidden: 1152);
        var config = ModelConfigInference.Infer(state, ModelFamily.DiT, "DiT-XL-2.pt");
        Assert.Equal(ModelRegistry.Get("DiT-XL/2", imageSize) with { ClassDropoutProb = config.ClassDropoutProb, MediatorNum = config.MediatorNum }, config);
        Assert.Equal(imageSize, ModelConfigInference.ImageSize(config));
    }

    [Fact]
    public void MissingKeysAndUnknownWidthsAreNamed()
    {
        var state = SafeTensors.Read(Fixtures.PathOf("full_grid8.weights.safetensors")).Tensors;
        var heads = Assert.Throws<MediatorDiTException>(() => ModelConfigInference.Infer(state, ModelFamily.SiT, "f.pt"));
        Assert.Contains("--num-heads", heads.Message);

        var vae = SafeTensors.Read(Fixtures.PathOf("vae.weights.safetensors")).Tensors;
        var notModel = Assert.Throws<MediatorDiTException>(() => ModelConfigInference.Infer(vae, ModelFamily.DiT, "vae.pt"));
        Assert.Contains("x_embedder.proj.weight", notModel.Message);
    }

    [Theory]
    [InlineData("DiT-XL-2-256x256.pt", ModelFamily.DiT)]
    [InlineData("SiT-XL-2-256.pt", ModelFamily.SiT)]
    [InlineData("dit_model.pt", ModelFamily.DiT)]
    [InlineData("runs/x/sit.safetensors", ModelFamily.SiT)]
    [InlineData("mediatordit-export.safetensors", null)]
    [InlineData("model.pt", null)]
    public void TheFamilyComesFromAWordOfTheFileName(string path, ModelFamily? expected)
    {
        Assert.Equal(expected, ModelFamilies.FromFileName(path));
    }

    [Fact]
    public void AnUnknownFamilyIsAnError()
    {
        Assert.Contains("cannot tell", Assert.Throws<MediatorDiTException>(() => ModelFamilies.Resolve("model.pt", null)).Message);
        Assert.Contains("'Foo'", Assert.Throws<MediatorDiTException>(() => ModelFamilies.Parse("Foo", "--family")).Message);
        Assert.Throws<MediatorDiTException>(() => ModelFamilies.Parse("1", "--family"));
        Assert.Equal(ModelFamily.SiT, ModelFamilies.Resolve("DiT-XL-2-256x256.pt", ModelFamily.SiT));
    }

    /// <summary>Shape-only tensors (never read) for the given keys plus <paramref name="depth"/> full-attention blocks.</summary>
    private static Dictionary<string, StoredTensor> Shapes(Dictionary<string, int[]> keys, int depth, int hidden)
    {
        for (int i = 0; i < depth; i++)
        {
            keys[$"blocks.{i}.attn.qkv.weight"] = [3 * hidden, hidden];
            keys[$"blocks.{i}.mlp.fc1.weight"] = [4 * hidden, hidden];
        }
        return keys.ToDictionary(kv => kv.Key, kv => new StoredTensor(DType.F32, kv.Value, new NeverRead()));
    }

    private sealed class NeverRead : TensorByteSource
    {
        public override ByteLease Lease() => throw new InvalidOperationException("config inference must read shapes only.");
    }
}
