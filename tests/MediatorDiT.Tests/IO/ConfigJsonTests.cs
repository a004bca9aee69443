using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Models.Vae;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// A config file with a value of the wrong kind gets one sentence naming the file, the key, what it must be and what
/// was found, in words rather than .NET type names; text that is not JSON gets its line and byte.
/// </summary>
public class ConfigJsonTests
{
    private static string TrainError(string json) =>
        Assert.Throws<MediatorDiTException>(() => TrainConfig.FromJson(json, "run.json")).Message;

    [Theory]
    [InlineData("{\"model\": 5}", "run.json: the training config's \"model\" must be a string, found 5.")]
    [InlineData("{\"batch_size\": \"64\"}", "run.json: the training config's \"batch_size\" must be a whole number, found the string \"64\".")]
    [InlineData("{\"batch_size\": 1.5}", "run.json: the training config's \"batch_size\" must be a whole number, found 1.5.")]
    [InlineData("{\"batch_size\": null}", "run.json: the training config's \"batch_size\" must be a whole number, found null.")]
    [InlineData("{\"lr\": true}", "run.json: the training config's \"lr\" must be a number, found true.")]
    [InlineData("{\"hflip\": \"yes\"}", "run.json: the training config's \"hflip\" must be true or false, found the string \"yes\".")]
    [InlineData("{\"mediators\": 4}", "run.json: the training config's \"mediators\" must be a list [...], found 4.")]
    [InlineData("{\"mediators\": [4, \"x\"]}", "run.json: the training config's \"mediators[1]\" must be a whole number, found the string \"x\".")]
    [InlineData("{\"model_config\": {\"hidden_size\": \"96\"}}", "run.json: the training config's \"model_config.hidden_size\" must be a whole number, found the string \"96\".")]
    [InlineData("{\"model_config\": 3}", "run.json: the training config's \"model_config\" must be an object {...}, found 3.")]
    [InlineData("[1, 2]", "run.json: the training config must be a JSON object {...}, found a list [...].")]
    public void AValueOfTheWrongKindIsNamedByKeyWithWhatWasFound(string json, string expected) =>
        Assert.Equal(expected, TrainError(json));

    [Theory]
    [InlineData("{\"model\": \"custom\",\n  \"lr\": 0.0003,,\n}", "run.json: the training config is not valid JSON (line 2, byte 16).")]
    [InlineData("{nope", "run.json: the training config is not valid JSON (line 1, byte 2).")]
    [InlineData("", "run.json: the training config is empty.")]
    [InlineData("  \n ", "run.json: the training config is empty.")]
    public void TextThatIsNotJsonGivesItsLineAndByte(string json, string expected) =>
        Assert.Equal(expected, TrainError(json));

    [Fact]
    public void AValidConfigStillReadsAndKeepsDefaultsForMissingKeys()
    {
        var c = TrainConfig.FromJson("{\"batch_size\": 32, \"mediators\": [4, 16], \"model_config\": {\"hidden_size\": 96, \"depth\": 4, \"num_heads\": 4, \"patch_size\": 2}}", "run.json");
        Assert.Equal(32, c.BatchSize);
        Assert.Equal([4, 16], c.Mediators);
        Assert.Equal(96, c.ModelConfig!.HiddenSize);
        Assert.Equal(new TrainConfig().LearningRate, c.LearningRate);
    }

    [Fact]
    public void TheOtherConfigsSayTheSame()
    {
        Assert.Equal("w.safetensors: the model config's \"depth\" must be a whole number, found the string \"four\".",
            Assert.Throws<MediatorDiTException>(() => ModelConfig.FromJson("{\"depth\": \"four\"}", "w.safetensors")).Message);
        Assert.Equal("vae/config.json: the VAE config's \"block_out_channels\" must be a list [...], found 128.",
            Assert.Throws<MediatorDiTException>(() => AutoencoderKlConfig.FromJson("{\"block_out_channels\": 128}", "vae/config.json")).Message);
        Assert.StartsWith("c.json: the classifier config is not valid JSON (line 1, byte ",
            Assert.Throws<MediatorDiTException>(() => ClassifierConfig.FromJson("{\"a\" 1}", "c.json")).Message);
    }

    [Theory]
    [InlineData("$.a.b[1]", "7")]
    [InlineData("$['odd key'][0]", "\"x\"")]
    [InlineData("$.a.c", null)]
    [InlineData("$.a.b[5]", null)]
    public void PathsLeadToTheirValues(string path, string? raw)
    {
        using var doc = System.Text.Json.JsonDocument.Parse("{\"a\": {\"b\": [6, 7]}, \"odd key\": [\"x\"]}");
        Assert.Equal(raw, ConfigJson.Find(doc.RootElement, path)?.GetRawText());
    }
}
