using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.Models;

public class ConfigValidationTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(15)]
    [InlineData(50)]
    public void MediatorCountThatIsNotASquareIsRejectedByValue(int mediators)
    {
        var e = Assert.Throws<MediatorDiTException>(() => ModelRegistry.Get("SiT-S/2", 256, mediators));
        Assert.Contains("perfect square", e.Message);
        Assert.Contains(mediators.ToString(), e.Message);
    }

    [Fact]
    public void ImageSizeNotDivisibleByPatchIsRejected()
    {
        // 280 px -> 35x35 latent, not divisible by patch 2.
        var e = Assert.Throws<MediatorDiTException>(() => ModelRegistry.Get("SiT-S/2", 280, 16));
        Assert.Contains("35", e.Message);
        Assert.Contains("patch_size 2", e.Message);
        var e2 = Assert.Throws<MediatorDiTException>(() => new SiTModel(new ModelConfig { InputSize = 10, PatchSize = 4 }));
        Assert.Contains("not divisible by patch_size 4", e2.Message);
    }

    [Fact]
    public void UnknownModelNameListsTheKnownOnes()
    {
        var e = Assert.Throws<MediatorDiTException>(() => ModelRegistry.Get("SiT-M/2"));
        Assert.Contains("SiT-M/2", e.Message);
        Assert.Contains("SiT-XL/2", e.Message);
    }

    [Theory]
    [InlineData("SiT-S/2", 12, 384, 6, 2)]
    [InlineData("SiT-B/4", 12, 768, 12, 4)]
    [InlineData("SiT-L/8", 24, 1024, 16, 8)]
    [InlineData("DiT-XL/2", 28, 1152, 16, 2)]
    public void RegistryHasTheStandardSizes(string name, int depth, int hidden, int heads, int patch)
    {
        var c = ModelRegistry.Get(name, 256);
        Assert.Equal((depth, hidden, heads, patch, 32), (c.Depth, c.HiddenSize, c.NumHeads, c.PatchSize, c.InputSize));
        Assert.Equal(AttentionKind.Full, c.Attention);
        Assert.Equal(name.StartsWith("DiT") ? ModelFamily.DiT : ModelFamily.SiT, c.Family);
    }

    [Fact]
    public void ConfigJsonUsesTheOfficialArgumentNamesAndRoundTrips()
    {
        var c = ModelRegistry.Get("SiT-B/2", 512, 64);
        string json = c.ToJson();
        Assert.Contains("\"input_size\":64", json);
        Assert.Contains("\"mediator_num\":64", json);
        Assert.Contains("\"attention\":\"Mediator\"", json);
        Assert.Equal(c, ModelConfig.FromJson(json, "test"));
        var lower = ModelConfig.FromJson("{\"input_size\":16,\"attention\":\"full\",\"family\":\"DiT\"}", "test");
        Assert.Equal(AttentionKind.Full, lower.Attention);
        Assert.Equal(ModelFamily.DiT, lower.Family);
    }

    [Fact]
    public void BadConfigJsonNamesTheSource()
    {
        var e = Assert.Throws<MediatorDiTException>(() => ModelConfig.FromJson("{\"input_size\": \"big\"}", "run.json"));
        Assert.Contains("run.json", e.Message);
    }

    [Theory]
    [InlineData("num_classes", 2147483647, "num_classes must be at most 1000000, got 2147483647")] // was 'negative dimension'
    [InlineData("input_size", 1000000, "input_size must be at most 1024, got 1000000")] // was 'tensor too large'
    [InlineData("hidden_size", 9600000, "hidden_size must be at most 16384, got 9600000")]
    [InlineData("depth", 100000, "depth must be at most 1024, got 100000")]
    [InlineData("mediator_num", 1048576, "mediator_num must be at most 65536, got 1048576")]
    [InlineData("in_channels", 0, "in_channels must be positive, got 0")]
    [InlineData("mlp_ratio", 1000, "mlp_ratio must be positive (at most 64")]
    [InlineData("class_dropout_prob", 2, "class_dropout_prob must be in [0, 1], got 2")]
    public void OutOfRangeFieldsAreRefusedByNameAndSource(string field, double value, string expected)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(new ModelConfig { InputSize = 16, HiddenSize = 64, NumHeads = 4, Depth = 2, NumClasses = 10, MediatorNum = 16 }.ToJson())!;
        json[field] = field is "mlp_ratio" or "class_dropout_prob" ? value : (long)value;
        var e = Assert.Throws<MediatorDiTException>(() => ModelConfig.FromJson(json.ToJsonString(), "c.json"));
        Assert.StartsWith("c.json: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void AConfigWhoseLargestTensorWouldNotFitOneArrayIsRefusedBeforeAllocating()
    {
        // Each field is in range, but full attention over 512 x 512 tokens would need 16 x 262144^2 scores per image.
        var full = new ModelConfig { InputSize = 512, PatchSize = 1, HiddenSize = 64, NumHeads = 16, Depth = 1, Attention = AttentionKind.Full };
        var e = Assert.Throws<MediatorDiTException>(() => new SiTModel(full));
        Assert.Contains("attention maps (num_heads 16 x 262144 x 262144 tokens)", e.Message);
        Assert.Contains($"{16L * 262144 * 262144} values", e.Message);

        // 1024 blocks of width 16384: about 3.3e12 parameters.
        var wide = new ModelConfig { InputSize = 32, HiddenSize = 16384, NumHeads = 16, Depth = 1024 };
        var p = Assert.Throws<MediatorDiTException>(() => wide.Validate());
        Assert.Contains("depth 1024 x hidden_size 16384", p.Message);
        Assert.Contains("more than the supported 4 billion", p.Message);
    }

    [Fact]
    public void ABadConfigInTheWeightsMetadataIsRefusedNamingTheFile()
    {
        string dir = Path.Combine(Path.GetTempPath(), "mdit-config-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var config = new ModelConfig { InputSize = 8, HiddenSize = 32, NumHeads = 2, Depth = 1, NumClasses = 10, MediatorNum = 4 };
        var model = new SiTModel(config);
        string path = Path.Combine(dir, "w.safetensors");
        var json = System.Text.Json.Nodes.JsonNode.Parse(config.ToJson())!;
        json["num_classes"] = int.MaxValue;
        SafeTensors.Write(path, StateDict.FromParameters(model), new Dictionary<string, string> { [ModelFiles.ConfigMetadataKey] = json.ToJsonString() });
        var e = Assert.Throws<MediatorDiTException>(() => ModelFiles.Load(path));
        Assert.Equal($"{path} (__metadata__ config): num_classes must be at most {ModelConfig.MaxNumClasses}, got {int.MaxValue}.", e.Message);
    }
}
