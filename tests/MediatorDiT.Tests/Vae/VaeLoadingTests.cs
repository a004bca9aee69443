using System.Text.Json;
using MediatorDiT.IO;
using MediatorDiT.Models.Vae;

namespace MediatorDiT.Tests.Vae;

/// <summary>Key naming, the full-size layout and the errors for weights that do not fit the config.</summary>
public class VaeLoadingTests
{
    [Theory]
    [InlineData("older_names")]
    [InlineData("modern_names")]
    public void EveryKeyOfTheFullSizeLayoutMapsOntoAParameter(string scheme)
    {
        var vae = new AutoencoderKl(AutoencoderKlConfig.StableDiffusion);
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.PathOf("sd_vae_layout.json")));
        var layout = doc.RootElement.GetProperty(scheme);
        var covered = new HashSet<string>();
        foreach (var entry in layout.EnumerateObject())
        {
            int[] shape = entry.Value.EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var parameter = vae.FindParameter(entry.Name);
            Assert.True(parameter is not null, $"layout key '{entry.Name}' maps onto no parameter.");
            Assert.True(parameter.Value.Shape.SequenceEqual(shape),
                $"'{entry.Name}' is [{string.Join(", ", shape)}] in the layout but the parameter is [{parameter.Value.ShapeString}].");
            Assert.True(covered.Add(parameter.Name), $"two layout keys map onto '{parameter.Name}'.");
        }
        var missing = vae.Parameters.Select(p => p.Name).Where(n => !covered.Contains(n)).ToList();
        Assert.True(missing.Count == 0, "parameters absent from the layout: " + string.Join(", ", missing));
        Assert.Equal(vae.Parameters.Count, covered.Count);
    }

    [Fact]
    public void FullSizeLayoutLoadsUnderBothSchemes()
    {
        var vae = new AutoencoderKl(AutoencoderKlConfig.StableDiffusion);
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.PathOf("sd_vae_layout.json")));
        foreach (string scheme in new[] { "older_names", "modern_names" })
        {
            var state = new Dictionary<string, StoredTensor>();
            foreach (var entry in doc.RootElement.GetProperty(scheme).EnumerateObject())
            {
                int[] shape = entry.Value.EnumerateArray().Select(e => e.GetInt32()).ToArray();
                // F16 keeps the synthetic full-size state dict small; the loader converts it.
                state[entry.Name] = new StoredTensor(DType.F16, shape, new byte[2 * StoredTensor.CountElements(shape)]);
            }
            vae.LoadStateDict(state, scheme);
        }
    }

    [Fact]
    public void KeyNamesTranslateBothWays()
    {
        Assert.Equal("decoder.mid_block.attentions.0.query.weight", VaeKeyNames.ToOlder("decoder.mid_block.attentions.0.to_q.weight"));
        Assert.Equal("encoder.mid_block.attentions.0.proj_attn.bias", VaeKeyNames.ToOlder("encoder.mid_block.attentions.0.to_out.0.bias"));
        Assert.Equal("encoder.mid_block.attentions.0.to_v.bias", VaeKeyNames.ToModern("encoder.mid_block.attentions.0.value.bias"));
        Assert.Equal("encoder.mid_block.attentions.0.group_norm.weight", VaeKeyNames.ToModern("encoder.mid_block.attentions.0.group_norm.weight"));
        Assert.Equal("decoder.up_blocks.0.resnets.0.conv1.weight", VaeKeyNames.ToOlder("decoder.up_blocks.0.resnets.0.conv1.weight"));
    }

    [Fact]
    public void WeightsForAnotherConfigNameTheKeyAndBothShapes()
    {
        var state = SafeTensors.Read(Fixtures.PathOf("vae.weights.safetensors")).Tensors;
        var fullSize = new AutoencoderKl(AutoencoderKlConfig.StableDiffusion);
        var e = Assert.Throws<MediatorDiTException>(() => fullSize.LoadStateDict(state, "small.safetensors"));
        Assert.Contains("small.safetensors", e.Message);
        Assert.Contains("'encoder.conv_in.weight'", e.Message);
        Assert.Contains("[32, 3, 3, 3]", e.Message);
        Assert.Contains("[128, 3, 3, 3]", e.Message);
    }

    [Fact]
    public void OneMisShapedTensorNamesItsKeyAndBothShapes()
    {
        var state = new Dictionary<string, StoredTensor>(SafeTensors.Read(Fixtures.PathOf("vae.modern-names.weights.safetensors")).Tensors);
        const string key = "decoder.mid_block.attentions.0.to_k.weight";
        state[key] = new StoredTensor(DType.F32, [64, 32], new byte[64 * 32 * 4]);
        var vae = new AutoencoderKl(SmallConfig());
        var e = Assert.Throws<MediatorDiTException>(() => vae.LoadStateDict(state, "bad.safetensors"));
        Assert.Contains($"'{key}'", e.Message);
        Assert.Contains("[64, 32]", e.Message);
        Assert.Contains("[64, 64]", e.Message);
    }

    [Fact]
    public void MissingUnknownAndDoubleNamedKeysAreErrors()
    {
        var original = SafeTensors.Read(Fixtures.PathOf("vae.weights.safetensors")).Tensors;
        var vae = new AutoencoderKl(SmallConfig());

        var missing = new Dictionary<string, StoredTensor>(original);
        missing.Remove("quant_conv.bias");
        Assert.Contains("'quant_conv.bias'", Assert.Throws<MediatorDiTException>(() => vae.LoadStateDict(missing, "m")).Message);

        var unknown = new Dictionary<string, StoredTensor>(original) { ["encoder.extra.weight"] = original["quant_conv.bias"] };
        Assert.Contains("'encoder.extra.weight'", Assert.Throws<MediatorDiTException>(() => vae.LoadStateDict(unknown, "u")).Message);

        var both = new Dictionary<string, StoredTensor>(original)
        {
            ["encoder.mid_block.attentions.0.to_q.weight"] = original["encoder.mid_block.attentions.0.query.weight"],
        };
        var e = Assert.Throws<MediatorDiTException>(() => vae.LoadStateDict(both, "b"));
        Assert.Contains("encoder.mid_block.attentions.0.query.weight", e.Message);
    }

    [Fact]
    public void AttentionWeightsStoredAsOneByOneConvolutionsLoad()
    {
        var original = SafeTensors.Read(Fixtures.PathOf("vae.weights.safetensors")).Tensors;
        var state = original.ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (string key in state.Keys.Where(k => k.Contains(".attentions.") && k.EndsWith(".weight") && !k.Contains("group_norm")).ToList())
            state[key] = new StoredTensor(state[key].DType, [.. state[key].Shape, 1, 1], state[key].Bytes);
        var vae = new AutoencoderKl(SmallConfig());
        vae.LoadStateDict(state, "conv-shaped");
        var reference = VaeFiles.Load(Fixtures.PathOf("vae.weights.safetensors"));
        Assert.Equal(reference.Decoder.MidBlock.Attention.KeyWeight.Value.Span.ToArray(), vae.Decoder.MidBlock.Attention.KeyWeight.Value.Span.ToArray());
    }

    [Fact]
    public void BadConfigsAndInputsAreClearErrors()
    {
        Assert.Contains("norm_num_groups", Assert.Throws<MediatorDiTException>(() =>
            new AutoencoderKl(new AutoencoderKlConfig { BlockOutChannels = [48, 64] })).Message);
        Assert.Contains("down_block_types", Assert.Throws<MediatorDiTException>(() =>
            new AutoencoderKl(SmallConfig() with { DownBlockTypes = ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"] })).Message);
        var vae = new AutoencoderKl(SmallConfig());
        Assert.Contains("[1, 3, 15, 16]", Assert.Throws<MediatorDiTException>(() => vae.Encode(new MediatorDiT.Tensors.Tensor(1, 3, 15, 16))).Message);
        Assert.Contains("[1, 3, 8, 8]", Assert.Throws<MediatorDiTException>(() => vae.Decode(new MediatorDiT.Tensors.Tensor(1, 3, 8, 8))).Message);
    }

    [Fact]
    public void ConfigReadsDiffusersJson()
    {
        const string json = """
            {"_class_name": "AutoencoderKL", "_diffusers_version": "0.4.2", "act_fn": "silu",
             "block_out_channels": [128, 256, 512, 512],
             "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
             "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
             "sample_size": 256, "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}
            """;
        var config = AutoencoderKlConfig.FromJson(json, "config.json").Validate();
        Assert.Equal(AutoencoderKlConfig.StableDiffusion.BlockOutChannels, config.BlockOutChannels);
        Assert.Equal(8, config.DownsampleFactor);
        Assert.Equal(2, config.LayersPerBlock);
    }

    private static AutoencoderKlConfig SmallConfig() => new() { BlockOutChannels = [32, 64], LayersPerBlock = 1, SampleSize = 16 };
}
