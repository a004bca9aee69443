using System.Diagnostics;
using System.Text;
using MediatorDiT.Evaluation;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Bench;

/// <summary>
/// The evaluation classifier and metrics: the batched convolution against the row-parallel Conv2d and the
/// direct loops on the classifier's second layer (batch 128, 32 -> 64 channels, 16x16), the classifier's
/// forward and training step, and SampleEvaluator.Evaluate for 1,000 and 10,000 images against a
/// 10,000-image reference. Ratios are measured side by side in one run.
/// </summary>
public static class EvaluationBenchmark
{
    public static string Run(int threads)
    {
        ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
        var sb = new StringBuilder();
        sb.AppendLine($"threads {threads}, GEMM backend {Gemm.Backend}");

        var g = Conv2dGeometry.Square(32, 64, 3, 1, 1);
        int batch = 128, s = 16;
        var rng = new RandomSource(1);
        var x = new float[batch * 32 * s * s];
        var w = new float[64 * g.PatchSize];
        var b = new float[64];
        rng.FillGaussian(x);
        rng.FillGaussian(w);
        var y = new float[batch * 64 * s * s];
        var workspace = new Conv2dWorkspace();
        double batched = Median(() => Conv2dBatch.Forward(x, w, b, y, g, batch, s, s, workspace));
        var xt = Tensor.FromArray(x, batch, 32, s, s);
        var wt = Tensor.FromArray(w, g.WeightShape);
        var bt = Tensor.FromArray(b, 64);
        var yt = new Tensor(batch, 64, s, s);
        double rows = Median(() => Conv2d.Forward(xt, wt, bt, yt, g, batch, s, s, workspace));
        double reference = Median(() => ReferenceConv2d.Forward(x.AsSpan(0, 8 * 32 * s * s), w, b, y, g, 8, s, s), 3) * batch / 8;
        var dw = new float[w.Length];
        var db = new float[64];
        var dx = new float[x.Length];
        double backward = Median(() => Conv2dBatch.Backward(x, w, y, dw, db, dx, g, batch, s, s, workspace));
        double gflop = 2.0 * g.MultiplyAccumulates(s, s) * batch / 1e9;
        sb.AppendLine($"conv 32->64 3x3 on 128 x 16x16: batched {batched * 1e3:F2} ms ({gflop / batched:F1} GFLOP/s), " +
                      $"row-parallel Conv2d {rows * 1e3:F2} ms ({rows / batched:F1}x slower), direct loops {reference * 1e3:F0} ms ({reference / batched:F0}x slower); " +
                      $"batched backward {backward * 1e3:F2} ms ({2 * gflop / backward:F1} GFLOP/s)");

        var classifier = new ImageClassifier(new ClassifierConfig());
        classifier.Initialize(new RandomSource(2));
        var images = new Tensor(batch, 1, 32, 32);
        rng.FillUniform(images.Span, -1, 1);
        double forward = Median(() => classifier.Forward(images));
        var labels = Enumerable.Range(0, batch).Select(i => i % 10).ToArray();
        var dLogits = new Tensor(batch, 10);
        double step = Median(() =>
        {
            var logits = classifier.Forward(images);
            SoftmaxCrossEntropy.ForwardBackward(logits.Span, labels, 10, dLogits.Span);
            classifier.ZeroGrad();
            classifier.Backward(dLogits);
        });
        sb.AppendLine($"classifier forward {batch / forward:F0} images/s, training step (no optimizer) {batch / step:F0} images/s");

        var evaluator = new SampleEvaluator(classifier);
        var real = new Tensor(10_000, 1, 32, 32);
        rng.FillUniform(real.Span, -1, 1);
        var clock = Stopwatch.StartNew();
        var stats = evaluator.Reference("random", real);
        sb.AppendLine($"reference statistics of 10000 images: {clock.Elapsed.TotalSeconds:F2} s");
        foreach (int n in new[] { 1_000, 10_000 })
        {
            var samples = new Tensor(n, 1, 32, 32);
            rng.FillUniform(samples.Span, -1, 1);
            double seconds = Median(() => evaluator.Evaluate(samples, null, stats), 3);
            sb.AppendLine($"Evaluate {n} images: {seconds:F2} s");
        }
        return sb.ToString();
    }

    private static double Median(Action action, int runs = 7)
    {
        action();
        var times = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            var clock = Stopwatch.StartNew();
            action();
            times[i] = clock.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[runs / 2];
    }
}
