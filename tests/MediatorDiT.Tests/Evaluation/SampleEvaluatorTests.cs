using MediatorDiT.Data;
using MediatorDiT.Evaluation;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>The public evaluation API: a set against itself, input forms that must agree, reference caching.</summary>
public class SampleEvaluatorTests
{
    private static Tensor RandomImages(int n, ulong seed)
    {
        var t = Tensor.FromArray(TestData.Gaussian(n * 1024, seed, 0.6f), n, 1, 32, 32);
        for (int i = 0; i < t.Length; i++) t.Data[i] = Math.Clamp(t.Data[i], -1f, 1f);
        return t;
    }

    [Fact]
    public void ASetAgainstItselfHasZeroFidAndFullPrecisionAndRecall()
    {
        var evaluator = new SampleEvaluator(SyntheticDigits.Classifier(1));
        var images = RandomImages(60, 2);
        var reference = evaluator.Reference("self", images);
        var outputs = evaluator.Extract(images);
        int[] labels = Enumerable.Range(0, 60).Select(i => outputs.Predicted(i)).ToArray();
        var report = evaluator.Evaluate(images, labels, reference);
        Assert.True(Math.Abs(report.Fid) < 1e-6, $"FID {report.Fid}");
        Assert.Equal(1.0, report.Precision);
        Assert.Equal(1.0, report.Recall);
        Assert.Equal(1.0, report.ClassAgreement);
        Assert.Equal(reference.InceptionScore, report.InceptionScore, 12);
        Assert.Equal(60, report.Count);
        Assert.Null(evaluator.Evaluate(images, null, reference).ClassAgreement);
    }

    [Fact]
    public void DifferentSetsScoreWorseThanTheSameSet()
    {
        var evaluator = new SampleEvaluator(SyntheticDigits.Classifier(1));
        var reference = evaluator.Reference("a", RandomImages(80, 3));
        var shifted = RandomImages(80, 4);
        for (int i = 0; i < shifted.Length; i++) shifted.Data[i] = Math.Clamp(shifted.Data[i] + 0.8f, -1f, 1f);
        var report = evaluator.Evaluate(shifted, null, reference);
        var cov = reference.Gaussian.Covariance;
        double trace = Enumerable.Range(0, reference.FeatureDim).Sum(i => cov[i * reference.FeatureDim + i]);
        Assert.True(report.Fid > 0.1 * trace, $"FID {report.Fid}, reference trace {trace}");
        Assert.True(report.Precision < 1 || report.Recall < 1);
    }

    [Fact]
    public void FloatImagesTheirBytesAndRgbCopiesScoreTheSame()
    {
        var evaluator = new SampleEvaluator(SyntheticDigits.Classifier(7));
        var reference = evaluator.Reference("r", RandomImages(50, 5));
        var images = RandomImages(40, 6);
        var quantized = ImageConversion.FromBytes(ImageConversion.ToBytes(images), 40, 32, 32, 1);
        var rgb = new Tensor(40, 3, 32, 32);
        for (int b = 0; b < 40; b++)
            for (int c = 0; c < 3; c++) images.Span.Slice(b * 1024, 1024).CopyTo(rgb.Span.Slice((b * 3 + c) * 1024, 1024));
        var a = evaluator.Evaluate(images, null, reference);
        Assert.Equal(a, evaluator.Evaluate(quantized, null, reference));
        Assert.Equal(a, evaluator.Evaluate(rgb, null, reference));
    }

    [Fact]
    public void BadInputIsOneClearError()
    {
        var evaluator = new SampleEvaluator(SyntheticDigits.Classifier(1));
        var reference = evaluator.Reference("r", RandomImages(10, 5));
        var e = Assert.Throws<MediatorDiTException>(() => evaluator.Evaluate(new Tensor(5, 1, 28, 28), null, reference));
        Assert.Contains("28", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => evaluator.Evaluate(RandomImages(10, 1), [1, 2], reference));
        Assert.Contains("2 labels", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => evaluator.Evaluate(RandomImages(10, 1), Enumerable.Repeat(12, 10).ToArray(), reference));
        Assert.Contains("12", e.Message);
        var other = new SampleEvaluator(SyntheticDigits.Classifier(2));
        e = Assert.Throws<MediatorDiTException>(() => other.Evaluate(RandomImages(10, 1), null, reference));
        Assert.Contains("another classifier", e.Message);
    }

    [Fact]
    public void ReferenceStatisticsOfADatasetSplitAreCachedAndReloaded()
    {
        string dataDir = SyntheticDigits.CreateDataDir();
        try
        {
            var classifier = SyntheticDigits.Classifier(3);
            var first = new SampleEvaluator(classifier).Reference("mnist", DatasetSplit.Test, dataDir);
            Assert.Equal(997, first.Count);
            var cached = Directory.GetFiles(Path.Combine(dataDir, "mnist"), "reference-test-*.safetensors");
            Assert.Single(cached);

            // A new evaluator with the same weights reads the file instead of extracting again.
            var again = new SampleEvaluator(classifier).Reference("mnist", DatasetSplit.Test, dataDir);
            Assert.Equal(first.Features, again.Features);
            Assert.Equal(first.Labels, again.Labels);
            Assert.Equal(first.Gaussian.Covariance, again.Gaussian.Covariance);
            Assert.Equal(first.Manifold.RadiiSquared, again.Manifold.RadiiSquared);
            Assert.Equal(first.InceptionScore, again.InceptionScore);

            // The features are those of the split as the models see it: padded to 32, in [-1, 1].
            var set = PixelDataset.Open("mnist", DatasetSplit.Test, null, dataDir);
            var direct = FeatureExtractor.Extract(classifier, set, out int[] labels);
            Assert.Equal(direct.Features, first.Features);
            Assert.Equal(labels, first.Labels);

            // Other weights never reuse the file.
            var stats = ReferenceStatistics.TryLoad(cached[0], new SampleEvaluator(SyntheticDigits.Classifier(4)).Fingerprint, 3, 10_000);
            Assert.Null(stats);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
