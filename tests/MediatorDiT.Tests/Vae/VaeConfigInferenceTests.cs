using System.Text.Json;
using MediatorDiT.IO;
using MediatorDiT.Models.Vae;

namespace MediatorDiT.Tests.Vae;

/// <summary>The VAE config read off a state dict: the fixture's small VAE and the full-size SD layout.</summary>
public class VaeConfigInferenceTests
{
    [Theory]
    [InlineData("older_names")]
    [InlineData("modern_names")]
    public void TheFullSizeLayoutGivesTheStableDiffusionConfig(string scheme)
    {
        var state = LayoutState(scheme, randomValues: false);
        var config = VaeConfigInference.Infer(state, scheme);
        Assert.Equal([128, 256, 512, 512], config.BlockOutChannels);
        Assert.Equal(2, config.LayersPerBlock);
        Assert.Equal(4, config.LatentChannels);
        Assert.Equal((3, 3), (config.InChannels, config.OutChannels));
        Assert.Equal(8, config.DownsampleFactor);
    }

    [Fact]
    public void TheFixtureWeightsGiveTheirManifestConfig()
    {
        var state = SafeTensors.Read(Fixtures.PathOf("vae.modern-names.weights.safetensors")).Tensors;
        var config = VaeConfigInference.Infer(state, "fixture");
        Assert.Equal([32, 64], config.BlockOutChannels);
        Assert.Equal(1, config.LayersPerBlock);
        Assert.Equal(4, config.LatentChannels);
    }

    /// <summary>
    /// A random full-size state dict in the SD layout, stored as F16 without a config, loads through the
    /// real (memory-mapped) path: config inferred, values widened from half precision.
    /// </summary>
    [Fact]
    public void ARandomFullSizeF16FileWithoutConfigLoads()
    {
        using var dir = new IO.TempDirectory();
        var state = LayoutState("modern_names", randomValues: true);
        string path = dir.File("diffusion_pytorch_model.safetensors");
        SafeTensors.Write(path, state);
        var vae = VaeFiles.Load(path);
        Assert.Equal([128, 256, 512, 512], vae.Config.BlockOutChannels);
        Assert.Equal(2, vae.Config.LayersPerBlock);

        const string key = "decoder.mid_block.attentions.0.to_q.weight";
        var expected = new float[state[key].ElementCount];
        HalfPrecision.HalfToSingle(state[key].Bytes.Span, expected);
        Assert.Equal(expected, vae.FindParameter(key)!.Value.Span.ToArray());
        Assert.Contains(expected, v => v != 0);
    }

    [Fact]
    public void AStateDictThatIsNotAVaeIsNamedInTheError()
    {
        var state = SafeTensors.Read(Fixtures.PathOf("dit_model.weights.safetensors")).Tensors;
        var e = Assert.Throws<MediatorDiTException>(() => VaeConfigInference.Infer(state, "dit.safetensors"));
        Assert.Contains("encoder.conv_in.weight", e.Message);
        Assert.StartsWith("dit.safetensors", e.Message);
    }

    /// <summary>The layout's keys as F16 tensors: zeros, or with randomValues a random half on every 97th element.</summary>
    private static Dictionary<string, StoredTensor> LayoutState(string scheme, bool randomValues)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.PathOf("sd_vae_layout.json")));
        var state = new Dictionary<string, StoredTensor>();
        var rng = new Random(5);
        foreach (var entry in doc.RootElement.GetProperty(scheme).EnumerateObject())
        {
            int[] shape = entry.Value.EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var bytes = new byte[2 * StoredTensor.CountElements(shape)];
            if (randomValues)
            {
                // Random halves in [-1, 1) on a stride, so the file is random where it is checked but cheap to make.
                for (int i = 0; i < bytes.Length / 2; i += 97)
                    BitConverter.TryWriteBytes(bytes.AsSpan(2 * i), BitConverter.HalfToUInt16Bits((Half)(rng.NextSingle() * 2 - 1)));
            }
            state[entry.Name] = new StoredTensor(DType.F16, shape, bytes);
        }
        return state;
    }
}
