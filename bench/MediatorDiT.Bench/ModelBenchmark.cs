using System.Diagnostics;
using MediatorDiT.Evaluation;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Bench;

/// <summary>Forward and training-step throughput of a registered model with random weights.</summary>
public static class ModelBenchmark
{
    public sealed record Result(string Name, int Batch, double MedianSeconds, double ImagesPerSecond, double GflopsPerSecond);

    /// <summary>
    /// Median over <paramref name="repeats"/> timed runs after two warm-up runs. FLOPs: the counter's
    /// multiply-accumulates x 2 per forward; a training step (forward + backward) counts 3 forwards.
    /// </summary>
    public static Result Measure(ModelConfig config, int batch, bool training, int repeats = 5)
    {
        var model = new SiTModel(config);
        ModelInitializer.Initialize(model, seed: 1);
        // Random (not zero) adaLN and output weights, so every path does real work.
        var rng = new RandomSource(2);
        foreach (var p in model.Parameters)
            if (p.Trainable && (p.Name.Contains("adaLN") || p.Name.StartsWith("final_layer")))
                rng.FillGaussian(p.Value.Span, 0, 0.02f);

        var x = new Tensor(batch, config.InChannels, config.InputSize, config.InputSize);
        rng.FillGaussian(x.Span);
        var t = Enumerable.Range(0, batch).Select(i => (float)rng.NextDouble()).ToArray();
        var y = Enumerable.Range(0, batch).Select(i => rng.NextInt(config.NumClasses)).ToArray();
        var dOut = new Tensor(batch, config.ReturnedChannels, config.InputSize, config.InputSize);
        rng.FillGaussian(dOut.Span);

        void Step()
        {
            model.Forward(x, t, y);
            if (training)
            {
                model.ZeroGrad();
                model.Backward(dOut);
            }
        }

        Step();
        Step();
        var times = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            var sw = Stopwatch.StartNew();
            Step();
            times[r] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        double median = times[repeats / 2];
        double flops = FlopCounter.Count(config).PerImage * 2 * batch * (training ? 3 : 1);
        string name = $"{(training ? "train step" : "forward")} {(config.Attention == AttentionKind.Full ? "full" : $"m{config.MediatorNum}")}";
        return new Result(name, batch, median, batch / median, flops / median / 1e9);
    }
}
