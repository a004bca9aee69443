using MediatorDiT.Data;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Training;

/// <summary>eval_every: sample quality of the EMA and raw weights scored while a run trains, into eval.jsonl.</summary>
public class TrainingEvaluationTests
{
    // A classifier for the tiny runs' 2-channel 8 x 8 latents, and real-set statistics of 12 random images.
    private static TrainingEvaluation TinyEvaluation()
    {
        var classifier = new ImageClassifier(new ClassifierConfig { ImageSize = 8, InChannels = 2, Widths = [4], Hidden = 4, NumClasses = 3 });
        classifier.Initialize(new RandomSource(20));
        var evaluator = new SampleEvaluator(classifier);
        var real = new Tensor(12, 2, 8, 8);
        new RandomSource(21).FillGaussian(real.Span, 0, 0.5f);
        return new TrainingEvaluation(evaluator, evaluator.Reference("real", real, Enumerable.Range(0, 12).Select(i => i % 3).ToArray()), samples: 6, samplingSteps: 3);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ARunScoresBothWeightsEveryEvalEveryStepsAndTrainsTheSameWeights(bool sharedLadder)
    {
        string data = TrainerTests.MakeData();
        string dir = Path.GetDirectoryName(data)!;
        var evaluation = TinyEvaluation();
        var messages = new List<string>();
        var plainConfig = TrainerTests.Tiny(data, 10) with { Mediators = sharedLadder ? [1, 4] : [4] };
        var config = plainConfig with { EvalEvery = 5 };
        new Trainer().Run(config, Path.Combine(dir, "scored"), false,
            new Trainer.Options { Evaluation = evaluation, Messages = new Collect(messages) }, CancellationToken.None);
        new Trainer().Run(plainConfig, Path.Combine(dir, "plain"), false, new Trainer.Options(), CancellationToken.None);

        // Scoring samples from the networks leaves the training untouched, bit for bit.
        var scored = TrainerTests.Weights(TrainingCheckpoint.Latest(Path.Combine(dir, "scored"))!);
        var plain = TrainerTests.Weights(TrainingCheckpoint.Latest(Path.Combine(dir, "plain"))!);
        foreach (var key in plain.Keys) Assert.Equal(plain[key], scored[key]);

        string[] lines = File.ReadAllLines(Path.Combine(dir, "scored", TrainingEvaluationLog.FileName));
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("{\"step\":5,\"weights\":\"ema\",\"fid\":", lines[0]);
        Assert.StartsWith("{\"step\":5,\"weights\":\"model\",\"fid\":", lines[1]);
        Assert.StartsWith("{\"step\":10,\"weights\":\"ema\",\"fid\":", lines[2]);
        Assert.Equal(4, messages.Count(m => m.Contains(" weights, 6 samples: FID ")));
        string svg = File.ReadAllText(Path.Combine(dir, "scored", TrainingEvaluationLog.PlotFileName));
        Assert.Contains("EMA weights", svg);
        Assert.Contains("raw weights", svg);

        // The step-10 lines are the scores of the final checkpoint's EMA and raw weights.
        var resolved = Trainer.Resolve(config, new SampleShape(2, 8, 8), 3);
        var network = TrainableNetwork.Create(resolved.ModelConfig!, resolved.Mediators);
        var ema = TrainableNetwork.Create(resolved.ModelConfig!, resolved.Mediators);
        TrainingCheckpoint.Load(TrainingCheckpoint.Latest(Path.Combine(dir, "scored"))!, network, ema, new AdamW(network.Parameters, 1e-3));
        var again = evaluation.Evaluate(ema, network, 10);
        Assert.Equal(TrainingEvaluationLog.ToLine(again[0]), lines[2]);
        Assert.Equal(TrainingEvaluationLog.ToLine(again[1]), lines[3]);
        Assert.NotEqual(again[0].Report.Fid, again[1].Report.Fid);
        Assert.Equal(6, again[0].Report.Count);
        Assert.NotNull(again[0].Report.ClassAgreement);
    }

    [Fact]
    public void UnderADeviceRunsContextTheScoresSampleOnTheHostAndEqualTheCpusScores()
    {
        var resolved = Trainer.Resolve(TrainerTests.Tiny(TrainerTests.MakeData(), 1), new SampleShape(2, 8, 8), 3);
        var network = TrainableNetwork.Create(resolved.ModelConfig!, resolved.Mediators);
        var ema = TrainableNetwork.Create(resolved.ModelConfig!, resolved.Mediators);
        var rng = new RandomSource(8);
        foreach (var p in network.Parameters.Concat(ema.Parameters)) rng.FillGaussian(p.Value.Span, 0, 0.05f);
        var evaluation = TinyEvaluation();
        var onCpu = evaluation.Evaluate(ema, network, 1);
        IReadOnlyList<TrainingEvaluation.Entry> onDevice;
        var cuda = ComputeContext.Default with { Device = ComputeDevice.Cuda, DeviceIndex = 1 };
        using (cuda.Use()) onDevice = evaluation.Evaluate(ema, network, 1);
        Assert.Equal(onCpu.Select(TrainingEvaluationLog.ToLine), onDevice.Select(TrainingEvaluationLog.ToLine));
    }

    [Fact]
    public void ResumeDropsTheLinesPastTheResumedStepAndLinesThatAreNoEntry()
    {
        string data = TrainerTests.MakeData();
        string run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        var evaluation = TinyEvaluation();
        new Trainer().Run(TrainerTests.Tiny(data, 5) with { EvalEvery = 5 }, run, false, new Trainer.Options { Evaluation = evaluation }, CancellationToken.None);
        string log = Path.Combine(run, TrainingEvaluationLog.FileName);
        File.AppendAllText(log, "{\"step\":7,\"weights\":\"ema\",\"fid\":1}\nnot json\n");
        var messages = new List<string>();

        new Trainer().Run(TrainerTests.Tiny(data, 10) with { EvalEvery = 5 }, run, true,
            new Trainer.Options { Evaluation = evaluation, Messages = new Collect(messages) }, CancellationToken.None);
        Assert.Equal([5, 5, 10, 10], File.ReadAllLines(log).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()));
        Assert.Contains(messages, m => m == $"warning: {log} line 4 was dropped, it is not an evaluation entry.");
    }

    [Fact]
    public void ADatasetWithoutAClassifierIsRefusedBeforeTraining()
    {
        string data = TrainerTests.MakeData();
        string run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        var e = Assert.Throws<MediatorDiTException>(() =>
            new Trainer().Run(TrainerTests.Tiny(data, 5) with { EvalEvery = 5 }, run, false, new Trainer.Options(), CancellationToken.None));
        Assert.Equal($"eval_every scores samples with a built-in dataset's classifier (fashion-mnist, mnist), but the dataset is 'latents:{data}'; set eval_every to 0.", e.Message);
        Assert.False(Directory.Exists(Path.Combine(run, "checkpoints")) && Directory.EnumerateFiles(Path.Combine(run, "checkpoints")).Any());
    }

    [Theory]
    [InlineData("eval_every", "-1", "eval_every must be 0 (off) or positive, got -1.")]
    [InlineData("eval_samples", "3", "eval_samples must be in [4, 100000], got 3.")]
    [InlineData("eval_steps", "0", "eval_steps must be in [1, 10000], got 0.")]
    public void BadEvaluationSettingsAreNamed(string key, string value, string expected)
    {
        var e = Assert.Throws<MediatorDiTException>(() => TrainConfig.FromJson($"{{\"{key}\": {value}}}", "run.json").Validate());
        Assert.Contains(expected, e.Message);
    }

    private sealed class Collect(List<string> into) : IProgress<string>
    {
        public void Report(string value)
        {
            lock (into) into.Add(value);
        }
    }
}
