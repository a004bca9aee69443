using System.Diagnostics;
using System.Globalization;
using System.Text;
using MediatorDiT.Data;
using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Bench;

/// <summary>
/// Whole optimisation steps of the trainer (transport sampling, forward, loss, backward, clipping norm,
/// AdamW, EMA), on random data so that data loading is left out: SiT-S/2 at 256 tokens (batch 8, full
/// attention and 16 mediators) and the default Fashion-MNIST recipe (TrainConfig's defaults: the default
/// network, 16 mediators, batch 64, 1x32x32 images). Achieved GFLOP/s counts a step as 3 forwards
/// (FlopCounter's multiply-accumulates x 2), next to this machine's 1024^3 SGEMM rate measured in the same run.
/// </summary>
public static class TrainingBenchmark
{
    public sealed record Result(string Name, int Batch, double MedianSeconds, double ImagesPerSecond, double GflopsPerSecond);

    public static string Run(int threads)
    {
        ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
        var sb = new StringBuilder();
        double sgemm = SgemmBenchmark.MeasureGflops(1024, 1024, 1024, Gemm.Backend, threads);
        sb.AppendLine(CultureInfo.InvariantCulture, $"threads {threads}, GEMM backend {Gemm.Backend}, two-core ratio {SgemmBenchmark.TwoCoreRatio():F2}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"SGEMM 1024^3: {sgemm:F1} GFLOP/s");
        sb.AppendLine();
        sb.AppendLine($"{"case",-36} {"batch",5} {"s/step",8} {"images/s",9} {"GFLOP/s",8} {"of SGEMM",9}");
        var cases = new List<(string Name, TrainConfig Config, SampleShape Shape, int Classes, int Repeats)>();
        // One forward and backward per batch (grad_shards 1), as the history of these figures measured; the last
        // case takes the default 8 parts of a batch of 64 (what a new run does, docs/DISTRIBUTED.md).
        var s2 = new TrainConfig { Model = "SiT-S/2", BatchSize = 8, GradShards = 1 };
        cases.Add(("SiT-S/2 256 tokens, full", s2 with { Mediators = [] }, new SampleShape(4, 32, 32), 1000, 5));
        cases.Add(("SiT-S/2 256 tokens, 16 mediators", s2 with { Mediators = [16] }, new SampleShape(4, 32, 32), 1000, 5));
        cases.Add(("Fashion-MNIST default recipe", new TrainConfig { GradShards = 1 }, new SampleShape(1, 32, 32), 10, 3));
        cases.Add(("Fashion-MNIST recipe, 8 parts", new TrainConfig(), new SampleShape(1, 32, 32), 10, 3));
        foreach (var c in cases)
        {
            var r = Measure(c.Name, c.Config, c.Shape, c.Classes, c.Repeats);
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Name,-36} {r.Batch,5} {r.MedianSeconds,8:F3} {r.ImagesPerSecond,9:F2} {r.GflopsPerSecond,8:F1} {r.GflopsPerSecond / sgemm,9:P0}");
        }
        var resolved = Trainer.Resolve(new TrainConfig(), new SampleShape(1, 32, 32), 10).ModelConfig!;
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"default recipe network: hidden {resolved.HiddenSize}, depth {resolved.Depth}, heads {resolved.NumHeads}, patch {resolved.PatchSize}, {resolved.NumTokens} tokens, " +
            $"{FlopCounter.Count(resolved).GFlops:F3} GMAC per image forward");
        return sb.ToString();
    }

    /// <summary>Median seconds of <paramref name="repeats"/> steps after one warm-up step.</summary>
    public static Result Measure(string name, TrainConfig requested, SampleShape shape, int classes, int repeats)
    {
        var config = Trainer.Resolve(requested, shape, classes).Validate();
        var modelConfig = config.ModelConfig!;
        var network = TrainableNetwork.Create(modelConfig, config.Mediators);
        var ema = TrainableNetwork.Create(modelConfig, config.Mediators);
        foreach (var member in network.Members) ModelInitializer.Initialize(member, 1);
        // Random (not zero) adaLN and output weights, so every path does real work.
        var init = new RandomSource(2);
        foreach (var p in network.Parameters)
            if (p.Trainable && (p.Name.Contains("adaLN") || p.Name.StartsWith("final_layer")))
                init.FillGaussian(p.Value.Span, 0, 0.02f);
        Ema.CopyWeights(network, ema);
        var optimizer = new AdamW(network.Parameters, config.LearningRate, weightDecay: config.WeightDecay);
        var transport = new Transport();
        var rng = new RandomSource(3);
        var x1 = new Tensor(config.BatchSize, shape.Channels, shape.Height, shape.Width);
        rng.FillGaussian(x1.Span, 0, 0.5f);
        var labels = Enumerable.Range(0, config.BatchSize).Select(i => i % classes).ToArray();

        long step = 0;
        Trainer.TrainStep(network, ema, optimizer, transport, rng, x1, labels, config, step++);
        var times = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            var sw = Stopwatch.StartNew();
            Trainer.TrainStep(network, ema, optimizer, transport, rng, x1, labels, config, step++);
            times[r] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        double median = times[repeats / 2];
        double flops = FlopCounter.Count(network.Members[0].Config).PerImage * 2 * 3 * config.BatchSize;
        return new Result(name, config.BatchSize, median, config.BatchSize / median, flops / median / 1e9);
    }
}
