using System.Globalization;
using MediatorDiT.Evaluation;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>The classifiers committed under models/: found by the default lookup, small, and with the accuracy they were trained to.</summary>
public class ShippedClassifierTests
{
    [Theory]
    [InlineData("fashion-mnist", 0.90)]
    [InlineData("mnist", 0.95)]
    public void TheShippedClassifierIsFoundLoadsAndRecordsItsAccuracy(string dataset, double minimum)
    {
        string path = ClassifierFiles.DefaultPath(dataset);
        Assert.Equal(Path.Combine("models", ClassifierFiles.FileName(dataset)), Path.GetRelativePath(Path.GetDirectoryName(Path.GetDirectoryName(path)!)!, path));
        Assert.True(new FileInfo(path).Length < 2_000_000);
        var classifier = ImageClassifier.Load(path, out var metadata);
        Assert.Equal(new ClassifierConfig().Widths, classifier.Config.Widths);
        Assert.Equal(32, classifier.Config.ImageSize);
        Assert.Equal(dataset, metadata["dataset"]);
        Assert.True(double.Parse(metadata["test_accuracy"], CultureInfo.InvariantCulture) >= minimum, metadata["test_accuracy"]);
    }

    [Fact]
    public void AMissingClassifierNamesWhereItWasLookedForAndHowToGetOne()
    {
        var e = Assert.Throws<MediatorDiTException>(() => ClassifierFiles.DefaultPath("cifar-10"));
        Assert.Contains("classifier-cifar-10.safetensors", e.Message);
        Assert.Contains("train-classifier", e.Message);
    }
}
