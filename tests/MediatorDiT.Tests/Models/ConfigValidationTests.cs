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
}
