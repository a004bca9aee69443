using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Training;

/// <summary>The training loop on a tiny latent dataset: resume identity, overfitting, accumulation, faults.</summary>
public class TrainerTests
{
    internal static string MakeData(int count = 16)
    {
        string dir = Path.Combine(Path.GetTempPath(), "mdit-train-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var latents = new Tensor(count, 2, 8, 8);
        new RandomSource(3).FillGaussian(latents.Span, 0, 0.5f);
        string path = Path.Combine(dir, "latents.safetensors");
        LatentDataset.Save(path, StoredTensor.FromFloat(latents), Enumerable.Range(0, count).Select(i => (long)(i % 3)).ToArray(), 3);
        return path;
    }

    internal static TrainConfig Tiny(string data, long steps) => new()
    {
        Model = "custom",
        ModelConfig = new ModelConfig { HiddenSize = 32, Depth = 2, NumHeads = 2, PatchSize = 2, LearnSigma = false },
        Mediators = [4],
        Dataset = "latents:" + data,
        BatchSize = 4,
        LearningRate = 1e-3,
        Steps = steps,
        CheckpointEvery = 5,
        LogEvery = 1,
        EmaDecay = 0.9,
        Seed = 11,
    };

    internal static Dictionary<string, float[]> Weights(string file) =>
        SafeTensors.Read(file).Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.ToFloat().Span.ToArray());

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StoppingAndResumingGivesBitIdenticalWeights(bool sharedLadder)
    {
        string data = MakeData();
        TrainConfig Tiny(string d, long steps) => TrainerTests.Tiny(d, steps) with { Mediators = sharedLadder ? [1, 4] : [4] };
        string straight = Path.Combine(Path.GetDirectoryName(data)!, "straight");
        string split = Path.Combine(Path.GetDirectoryName(data)!, "split");
        new Trainer().Run(Tiny(data, 20), straight, false, new Trainer.Options(), CancellationToken.None);
        new Trainer().Run(Tiny(data, 10), split, false, new Trainer.Options(), CancellationToken.None);
        new Trainer().Run(Tiny(data, 20), split, true, new Trainer.Options(), CancellationToken.None);
        var a = Weights(TrainingCheckpoint.Latest(straight)!);
        var b = Weights(TrainingCheckpoint.Latest(split)!);
        Assert.Equal(a.Keys.OrderBy(k => k), b.Keys.OrderBy(k => k));
        foreach (var key in a.Keys) Assert.Equal(a[key], b[key]);
        Assert.True(File.Exists(Path.Combine(straight, sharedLadder ? "ema-m4.safetensors" : "ema.safetensors")));
        Assert.True(File.Exists(Path.Combine(straight, "loss.svg")));
        Assert.Equal(20, File.ReadAllLines(Path.Combine(split, "metrics.jsonl")).Length);
    }

    [Fact]
    public void ATinyModelOverfitsOneBatch()
    {
        // One batch with the same noise and times every step: a deterministic regression the model must fit.
        var config = Trainer.Resolve(Tiny(MakeData(), 1) with { ClassDropout = 0, LearningRate = 3e-3, EmaDecay = 0 }, new SampleShape(2, 8, 8), 3);
        var net = TrainableNetwork.Create(config.ModelConfig!, config.Mediators);
        var ema = TrainableNetwork.Create(config.ModelConfig!, config.Mediators);
        ModelInitializer.Initialize(net.Members[0], 1);
        var x1 = new Tensor(4, 2, 8, 8);
        new RandomSource(4).FillGaussian(x1.Span);
        var opt = new AdamW(net.Parameters, config.LearningRate);
        var transport = new MediatorDiT.Diffusion.Transport();
        var losses = new List<double>();
        for (int step = 0; step < 300; step++)
            losses.Add(Trainer.TrainStep(net, ema, opt, transport, new RandomSource(5), x1, [0, 1, 2, 0], config, step).Loss);
        double first = losses.Take(5).Average(), last = losses.TakeLast(5).Average();
        Assert.True(last * 10 <= first, $"loss fell from {first:F4} to {last:F4}, less than tenfold");
    }

    [Fact]
    public void GradientAccumulationEqualsOneBigBatch()
    {
        string data = MakeData();
        var config = Tiny(data, 1);
        var resolved = Trainer.Resolve(config, new SampleShape(2, 8, 8), 3);
        Dictionary<string, float[]> Grads(int accum)
        {
            var net = TrainableNetwork.Create(resolved.ModelConfig!, resolved.Mediators);
            var ema = TrainableNetwork.Create(resolved.ModelConfig!, resolved.Mediators);
            var rng = new RandomSource(9);
            foreach (var p in net.Parameters) rng.FillGaussian(p.Value.Span, 0, 0.1f);
            var x1 = new Tensor(4, 2, 8, 8);
            new RandomSource(4).FillGaussian(x1.Span);
            var opt = new AdamW(net.Parameters, 1e-3);
            Trainer.TrainStep(net, ema, opt, new MediatorDiT.Diffusion.Transport(), new RandomSource(5), x1, [0, 1, 2, 0],
                resolved with { GradAccum = accum, ClassDropout = 0 }, 0);
            return net.Parameters.Where(p => p.Trainable).ToDictionary(p => p.Name, p => p.Grad!.Span.ToArray());
        }
        var one = Grads(1);
        var two = Grads(2);
        foreach (var key in one.Keys) TestData.AssertClose(one[key], two[key], 1e-5f, key);
    }

    [Fact]
    public void ResumeWithADifferentModelNamesTheFields()
    {
        string data = MakeData();
        string run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        new Trainer().Run(Tiny(data, 5), run, false, new Trainer.Options(), CancellationToken.None);
        var e = Assert.Throws<MediatorDiTException>(() =>
            new Trainer().Run(Tiny(data, 10) with { Mediators = [16], BatchSize = 8 }, run, true, new Trainer.Options(), CancellationToken.None));
        Assert.Contains("mediators", e.Message);
        Assert.Contains("batch_size", e.Message);
    }

    [Fact]
    public void LeftoverTempFilesAreIgnoredAndCancellationSavesACheckpoint()
    {
        string data = MakeData();
        string run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        new Trainer().Run(Tiny(data, 5), run, false, new Trainer.Options(), CancellationToken.None);
        File.WriteAllText(Path.Combine(run, "checkpoints", "0000009.safetensors.tmp-abc"), "half written");
        Assert.EndsWith("0000005.safetensors", TrainingCheckpoint.Latest(run));

        using var cts = new CancellationTokenSource();
        int reports = 0;
        var options = new Trainer.Options { Progress = new SyncProgress(p => { if (++reports == 3) cts.Cancel(); }) };
        Assert.ThrowsAny<OperationCanceledException>(() => new Trainer().Run(Tiny(data, 50), run, true, options, cts.Token));
        var last = TrainingCheckpoint.List(run).Last().Step;
        Assert.InRange(last, 8, 9);
    }

    [Fact]
    public void UnwritableRunFolderFailsBeforeTraining()
    {
        string data = MakeData();
        string blocker = Path.Combine(Path.GetDirectoryName(data)!, "file");
        File.WriteAllText(blocker, "x");
        var e = Assert.Throws<MediatorDiTException>(() =>
            new Trainer().Run(Tiny(data, 5), Path.Combine(blocker, "run"), false, new Trainer.Options(), CancellationToken.None));
        Assert.Contains("not writable", e.Message);
    }

    [Fact]
    public void NonFiniteLossStopsWithTheStep()
    {
        string data = MakeData();
        string run = Path.Combine(Path.GetDirectoryName(data)!, "nan");
        var e = Assert.Throws<MediatorDiTException>(() =>
            new Trainer().Run(Tiny(data, 20) with { LearningRate = 1e30 }, run, false, new Trainer.Options(), CancellationToken.None));
        Assert.Contains("at step", e.Message);
    }

    private sealed class SyncProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
