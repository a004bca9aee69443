using MediatorDiT.Data;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// Runs the classifier over many images in batches and collects its penultimate features and
/// softmax probabilities (<see cref="ClassifierOutputs"/>).
/// </summary>
public static class FeatureExtractor
{
    /// <summary>Images per classifier call when none is given.</summary>
    public const int DefaultBatchSize = 250;

    /// <summary>images (N, C, S, S) in [-1, 1], in the classifier's input shape.</summary>
    public static ClassifierOutputs Extract(ImageClassifier classifier, Tensor images, int batchSize = DefaultBatchSize,
        CancellationToken cancellationToken = default)
    {
        var cfg = classifier.Config;
        if (images.Rank != 4 || images.Dim(1) != cfg.InChannels || images.Dim(2) != cfg.ImageSize || images.Dim(3) != cfg.ImageSize)
            throw new MediatorDiTException($"the classifier takes images (N, {cfg.InChannels}, {cfg.ImageSize}, {cfg.ImageSize}), not [{images.ShapeString}].");
        int n = images.Dim(0), per = cfg.InChannels * cfg.ImageSize * cfg.ImageSize;
        var batch = new Tensor(0);
        return Run(classifier, n, batchSize, (start, count) =>
        {
            batch.EnsureShape(count, cfg.InChannels, cfg.ImageSize, cfg.ImageSize);
            images.Span.Slice(start * per, count * per).CopyTo(batch.Span);
            return batch;
        }, cancellationToken);
    }

    /// <summary>Every sample of <paramref name="dataset"/>, in order; <paramref name="labels"/> returns their labels.</summary>
    public static ClassifierOutputs Extract(ImageClassifier classifier, IDataset dataset, out int[] labels, int batchSize = DefaultBatchSize,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var cfg = classifier.Config;
        var shape = dataset.SampleShape;
        if (shape.Channels != cfg.InChannels || shape.Height != cfg.ImageSize || shape.Width != cfg.ImageSize)
            throw new MediatorDiTException($"the dataset's samples are {shape}, but the classifier takes ({cfg.InChannels}, {cfg.ImageSize}, {cfg.ImageSize}).");
        var all = new int[dataset.Count];
        var batch = new Tensor(0);
        int per = shape.Length, lastReported = 0;
        var outputs = Run(classifier, dataset.Count, batchSize, (start, count) =>
        {
            batch.EnsureShape(count, shape.Channels, shape.Height, shape.Width);
            ParallelLoop.For(count, i => dataset.Get(start + i, batch.Data.AsSpan(i * per, per), out all[start + i]));
            if (progress is not null && start + count - lastReported >= 10_000)
            {
                lastReported = start + count;
                progress.Report($"features of {start + count}/{dataset.Count} images");
            }
            return batch;
        }, cancellationToken);
        labels = all;
        return outputs;
    }

    private static ClassifierOutputs Run(ImageClassifier classifier, int n, int batchSize, Func<int, int, Tensor> fill, CancellationToken cancellationToken)
    {
        var cfg = classifier.Config;
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be positive.");
        var features = new float[(long)n * cfg.Hidden];
        var probabilities = new float[(long)n * cfg.NumClasses];
        for (int start = 0; start < n; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(batchSize, n - start);
            var logits = classifier.Forward(fill(start, count));
            classifier.Features.Span.CopyTo(features.AsSpan(start * cfg.Hidden, count * cfg.Hidden));
            for (int i = 0; i < count; i++)
                StableSoftmax(logits.Span.Slice(i * cfg.NumClasses, cfg.NumClasses), probabilities.AsSpan((start + i) * cfg.NumClasses, cfg.NumClasses));
        }
        return new ClassifierOutputs(features, probabilities, n, cfg.Hidden, cfg.NumClasses);
    }

    /// <summary>softmax with the maximum subtracted first (confident logits pass 88, where exp overflows float32).</summary>
    private static void StableSoftmax(ReadOnlySpan<float> z, Span<float> p)
    {
        float max = System.Numerics.Tensors.TensorPrimitives.Max(z);
        double sum = 0;
        for (int c = 0; c < z.Length; c++) sum += Math.Exp(z[c] - max);
        for (int c = 0; c < z.Length; c++) p[c] = (float)(Math.Exp(z[c] - max) / sum);
    }
}
