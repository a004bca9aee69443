using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cli;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Training;

/// <summary>Resolution fine-tuning: a new run starts from weights trained on a smaller token grid.</summary>
public class InitFromTests
{
    // The fixture's low-resolution state dict: 8x8x4 inputs (4x4 tokens), hidden 64, 4 heads, depth 1, 16 mediators.
    private static readonly ModelConfig High = new()
    {
        InputSize = 16, PatchSize = 2, InChannels = 4, HiddenSize = 64, Depth = 1, NumHeads = 4, NumClasses = 10, MediatorNum = 16,
    };

    private static (Dictionary<string, StoredTensor> Low, Dictionary<string, StoredTensor> High) Fixture()
    {
        var io = SafeTensors.Read(Fixtures.PathOf("resize_state_dict.io.safetensors"));
        Dictionary<string, StoredTensor> Part(string prefix) =>
            io.Tensors.Where(kv => kv.Key.StartsWith(prefix)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
        return (Part("low."), Part("high."));
    }

    /// <summary>The low-resolution weights as a bare state dict file (no config), as official weights come.</summary>
    private static string WriteLow(string dir)
    {
        string path = Path.Combine(dir, "low.safetensors");
        SafeTensors.Write(path, Fixture().Low);
        return path;
    }

    [Fact]
    public void InitialisedWeightsAreTheResizedStateDict()
    {
        string dir = CliRunner.TempDir();
        var (low, high) = Fixture();
        var network = TrainableNetwork.Create(High, [16]);
        InitialWeights.LoadInto(WriteLow(dir), network);
        var expected = ResolutionResize.Interpolate(low, High);
        foreach (var p in network.Members[0].Parameters)
        {
            Assert.Equal(expected[p.Name].ToFloat().Span.ToArray(), p.Value.Span.ToArray());
            TestData.AssertClose(high[p.Name].ToFloat().Span, p.Value.Span, 1e-5f, p.Name);
        }
    }

    [Fact]
    public void AnOfficialTrainingCheckpointGivesItsEmaWeightsResized()
    {
        // The fixture's .pt: {model, ema, opt, args} of a 4x4-grid model with 4 mediators; the run is on 8x8 tokens.
        string pt = Fixtures.PathOf("mediator_grid4_m4.checkpoint.pt");
        var target = new ModelConfig { InputSize = 16, PatchSize = 2, InChannels = 4, HiddenSize = 64, Depth = 1, NumHeads = 4, NumClasses = 10, MediatorNum = 4 };
        var network = TrainableNetwork.Create(target, [4]);
        InitialWeights.LoadInto(pt, network);
        var expected = ResolutionResize.Interpolate(TorchFile.LoadStateDict(pt, "ema"), target);
        foreach (var p in network.Members[0].Parameters)
            Assert.Equal(expected[p.Name].ToFloat().Span.ToArray(), p.Value.Span.ToArray());
        Assert.Equal([1, 4, 4, 8, 1], network.Members[0]["blocks.0.attn.ah_bias"].Value.Shape);
    }

    [Fact]
    public void ASharedLadderCheckpointInitialisesEachCountFromItsOwnBiases()
    {
        string dir = CliRunner.TempDir();
        string data = Path.Combine(dir, "latents.safetensors");
        var latents = new Tensor(8, 2, 8, 8);
        new RandomSource(3).FillGaussian(latents.Span, 0, 0.5f);
        LatentDataset.Save(data, StoredTensor.FromFloat(latents), Enumerable.Range(0, 8).Select(i => (long)(i % 3)).ToArray(), 3);
        var small = new ModelConfig { HiddenSize = 32, Depth = 2, NumHeads = 2, PatchSize = 2, LearnSigma = false };
        var config = new TrainConfig
        {
            Model = "custom", ModelConfig = small, Mediators = [1, 4], Dataset = "latents:" + data, BatchSize = 4, Steps = 3, LogEvery = 1,
            EmaDecay = 0.5, LearningRate = 1e-2,
        };
        string run = Path.Combine(dir, "run");
        new Trainer().Run(config, run, false, new Trainer.Options(), CancellationToken.None);
        string checkpoint = TrainingCheckpoint.Latest(run)!;

        var resolved = Trainer.Resolve(config, new SampleShape(2, 16, 16), 3).ModelConfig!;
        var network = TrainableNetwork.Create(resolved, [1, 4]);
        InitialWeights.LoadInto(checkpoint, network);
        var file = SafeTensors.Read(checkpoint);
        for (int i = 0; i < 2; i++)
        {
            int count = network.MediatorCounts[i];
            // The member's official state dict, gathered here from the checkpoint's EMA entries.
            var state = new Dictionary<string, StoredTensor>();
            foreach (var (key, value) in file.Tensors.Where(kv => kv.Key.StartsWith("ema.")))
            {
                string name = key["ema.".Length..];
                if (name.Contains($".attn.m{count}.")) state[name.Replace($".attn.m{count}.", ".attn.")] = value;
                else if (!System.Text.RegularExpressions.Regex.IsMatch(name, @"\.attn\.m\d+\.")) state[name] = value;
            }
            var expected = ResolutionResize.Interpolate(state, network.Members[i].Config);
            foreach (var p in network.Members[i].Parameters)
                Assert.Equal(expected[p.Name].ToFloat().Span.ToArray(), p.Value.Span.ToArray());
        }
    }

    private static (string Data, string Config) RunFiles(string dir, int hidden)
    {
        string data = Path.Combine(dir, "latents16.safetensors");
        var latents = new Tensor(4, 4, 16, 16);
        new RandomSource(8).FillGaussian(latents.Span, 0, 0.5f);
        LatentDataset.Save(data, StoredTensor.FromFloat(latents), [0, 1, 2, 3], 10);
        string config = Path.Combine(dir, $"run{hidden}.json");
        var model = new ModelConfig { HiddenSize = hidden, Depth = 1, NumHeads = 4, PatchSize = 2, LearnSigma = true };
        File.WriteAllText(config, new TrainConfig { Model = "custom", ModelConfig = model, Mediators = [16] }.ToJson());
        return (data, config);
    }

    [Fact]
    public void TrainFromTheCommandLineStartsFromTheResizedWeights()
    {
        string dir = CliRunner.TempDir();
        string low = WriteLow(dir);
        var (data, config) = RunFiles(dir, 64);
        string run = Path.Combine(dir, "run");
        // One step with lr 1e-30 leaves every weight (all far from 0) as it was in float32: the step-0 weights.
        var r = CliRunner.Run("train", "--config", config, "--init-from", low, "--dataset", "latents:" + data, "--batch-size", "4",
            "--steps", "1", "--lr", "1e-30", "--out", run, "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("resized from a 4x4 to a 8x8 token grid", r.Stderr + r.Stdout);
        var saved = SafeTensors.Read(TrainingCheckpoint.Latest(run)!);
        var expected = ResolutionResize.Interpolate(Fixture().Low, High);
        foreach (var (name, tensor) in expected)
            Assert.Equal(tensor.ToFloat().Span.ToArray(), saved.GetFloat("model." + name).Span.ToArray());
    }

    [Fact]
    public void AnotherNetworkSizeOrABadFileFailsWithOneSentence()
    {
        string dir = CliRunner.TempDir();
        string low = WriteLow(dir);
        var (data, config) = RunFiles(dir, 32);
        var r = CliRunner.Run("train", "--config", config, "--init-from", low, "--dataset", "latents:" + data, "--batch-size", "4",
            "--steps", "1", "--out", Path.Combine(dir, "run"), "--no-progress");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("hidden_size is 64 but the run's is 32", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);

        string garbage = Path.Combine(dir, "garbage.pt");
        File.WriteAllText(garbage, "not a checkpoint");
        var bad = CliRunner.Run("train", "--config", config, "--init-from", garbage, "--dataset", "latents:" + data, "--batch-size", "4",
            "--steps", "1", "--out", Path.Combine(dir, "run2"), "--no-progress");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("garbage.pt", bad.Stderr);
        Assert.DoesNotContain("   at ", bad.Stderr);

        var missing = CliRunner.Run("train", "--config", config, "--init-from", Path.Combine(dir, "none.safetensors"),
            "--dataset", "latents:" + data, "--steps", "1", "--out", Path.Combine(dir, "run3"), "--no-progress");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("none.safetensors' does not exist", missing.Stderr);
    }
}
