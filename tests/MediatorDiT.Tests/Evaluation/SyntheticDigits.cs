using MediatorDiT.Data;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>
/// A stand-in for the mnist cache in a temporary data folder: 10,000 28x28 images with the pinned
/// package's class counts, each class a bright bar at its own position plus noise, so the CLI and the
/// evaluator can run end to end without fetching the real package.
/// </summary>
internal static class SyntheticDigits
{
    public static string CreateDataDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "mdit-eval-data-" + Guid.NewGuid().ToString("N")[..8]);
        var dataset = BuiltInDataset.Mnist;
        int[] counts = dataset.ExpectedClassCounts!.ToArray();
        int n = counts.Sum();
        var images = new byte[n * 784];
        var labels = new byte[n];
        var rng = new RandomSource(123);
        int i = 0;
        for (int c = 0; c < counts.Length; c++)
            for (int j = 0; j < counts[c]; j++, i++)
            {
                labels[i] = (byte)c;
                var image = images.AsSpan(i * 784, 784);
                for (int p = 0; p < 784; p++) image[p] = (byte)rng.NextInt(60);
                int row = 2 + 2 * c + rng.NextInt(3);
                for (int x = 4; x < 24; x++) image[row * 28 + x] = (byte)(200 + rng.NextInt(56));
            }
        ImageCacheFolder.Write(Path.Combine(dir, dataset.Name), dataset, new ImageSetContents(images, labels, counts), dataset.PackageIntegrity!);
        return dir;
    }

    /// <summary>A randomly initialised classifier for 32x32 grey images with 10 classes (metrics need no accuracy).</summary>
    public static MediatorDiT.Evaluation.ImageClassifier Classifier(ulong seed)
    {
        var c = new MediatorDiT.Evaluation.ImageClassifier(new MediatorDiT.Evaluation.ClassifierConfig { Widths = [4, 4, 4], Hidden = 8 });
        c.Initialize(new RandomSource(seed));
        // PyTorch's default bounds shrink activations layer by layer; a ReLU gain keeps the features spread.
        foreach (var p in c.Parameters) System.Numerics.Tensors.TensorPrimitives.Multiply(p.Value.Span, 2.5f, p.Value.Span);
        return c;
    }
}
