using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>The classifier network: its backward pass against finite differences, and its file round trip.</summary>
public class ImageClassifierTests
{
    internal static readonly ClassifierConfig Tiny = new() { ImageSize = 8, InChannels = 1, Widths = [3, 4], Hidden = 6, NumClasses = 4 };

    internal static ImageClassifier TinyClassifier(ulong seed)
    {
        var c = new ImageClassifier(Tiny);
        c.Initialize(new RandomSource(seed));
        return c;
    }

    [Fact]
    public void BackwardMatchesFiniteDifferencesOfTheCrossEntropy()
    {
        var classifier = TinyClassifier(5);
        // Scale the weights up so the ReLUs see a spread of pre-activations.
        foreach (var p in classifier.Parameters) System.Numerics.Tensors.TensorPrimitives.Multiply(p.Value.Span, 2f, p.Value.Span);
        int batch = 3;
        var images = Tensor.FromArray(TestData.Gaussian(batch * 64, 6), batch, 1, 8, 8);
        int[] labels = [2, 0, 3];
        double Loss()
        {
            var logits = classifier.Forward(images);
            return SoftmaxCrossEntropy.ForwardBackward(logits.Span, labels, 4, Span<float>.Empty);
        }

        var logits = classifier.Forward(images);
        var dLogits = new Tensor(logits.Shape);
        SoftmaxCrossEntropy.ForwardBackward(logits.Span, labels, 4, dLogits.Span);
        classifier.ZeroGrad();
        classifier.Backward(dLogits);
        var analytic = classifier.Parameters.ToDictionary(p => p.Name, p => p.Grad!.Span.ToArray());

        int checkedCount = 0;
        foreach (var p in classifier.Parameters)
        {
            var values = p.Value.Span;
            for (int i = 0; i < values.Length; i += Math.Max(1, values.Length / 12))
            {
                float keep = values[i];
                const float eps = 1e-3f;
                values[i] = keep + eps;
                double up = Loss();
                values[i] = keep - eps;
                double down = Loss();
                values[i] = keep;
                double numeric = (up - down) / (2 * eps);
                double a = analytic[p.Name][i];
                // float32 forward: the loss carries ~1e-7 relative rounding, ~1e-4 after dividing by 2 eps.
                Assert.True(Math.Abs(numeric - a) <= 5e-4 + 1e-2 * Math.Abs(numeric), $"{p.Name}[{i}]: analytic {a}, numeric {numeric}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount > 60);
        // The gradients are not trivially zero.
        Assert.True(analytic.Values.All(g => g.Any(v => v != 0)));
    }

    [Fact]
    public void SavedWeightsLoadIntoTheSameFunction()
    {
        var classifier = TinyClassifier(9);
        var images = Tensor.FromArray(TestData.Gaussian(5 * 64, 10), 5, 1, 8, 8);
        var before = classifier.Forward(images).Span.ToArray();
        string path = Path.Combine(Path.GetTempPath(), $"mdit-classifier-{Guid.NewGuid():N}.safetensors");
        try
        {
            classifier.Save(path, new Dictionary<string, string> { ["dataset"] = "mnist" });
            var loaded = ImageClassifier.Load(path, out var metadata);
            Assert.Equal("mnist", metadata["dataset"]);
            Assert.Equal(Tiny.Widths, loaded.Config.Widths);
            Assert.Equal(before, loaded.Forward(images).Span.ToArray());
            Assert.Equal(["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
                loaded.Parameters.Select(p => p.Name));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AFileWithoutAClassifierConfigIsRejectedByName()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mdit-notclassifier-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Write(path, new Dictionary<string, StoredTensor> { ["x"] = StoredTensor.FromFloat(new float[] { 1 }, [1]) });
            var e = Assert.Throws<MediatorDiTException>(() => ImageClassifier.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("classifier_config", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TheDefaultClassifierIsSmall()
    {
        var classifier = new ImageClassifier(new ClassifierConfig());
        long floats = classifier.Parameters.Sum(p => (long)p.Value.Length);
        Assert.True(floats * 4 < 2_000_000, $"{floats} weights");
        Assert.Equal(1024, new ClassifierConfig().FlatFeatures);
    }

    [Fact]
    public void TrainingOnASeparableToySetLearnsIt()
    {
        // Class = which quadrant holds a bright square: easy, so a few epochs must reach high accuracy.
        var set = new QuadrantDataset(400, 1);
        var test = new QuadrantDataset(200, 2);
        var result = ClassifierTrainer.Train(Tiny, set, test, new ClassifierTrainingOptions { Epochs = 6, BatchSize = 20, LearningRate = 1e-2, WarmupSteps = 5, Seed = 3 });
        Assert.True(result.TestAccuracy >= 0.95, $"accuracy {result.TestAccuracy}");
        Assert.Equal(6, result.AccuracyPerEpoch.Count);
    }

    /// <summary>8x8 images of noise with a bright 3x3 square in quadrant = label.</summary>
    private sealed class QuadrantDataset(int count, ulong seed) : MediatorDiT.Data.IDataset
    {
        private readonly float[] _noise = TestData.Gaussian(count * 64, seed, 0.2f);
        public int Count => count;
        public int NumClasses => 4;
        public MediatorDiT.Data.SampleShape SampleShape => new(1, 8, 8);

        public void Get(int index, Span<float> sample, out int label)
        {
            label = index % 4;
            _noise.AsSpan(index * 64, 64).CopyTo(sample);
            int y0 = label / 2 * 4, x0 = label % 2 * 4;
            for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                sample[(y0 + y) * 8 + x0 + x] += 1f;
        }
    }
}
