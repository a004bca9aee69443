using MediatorDiT.Data;
using MediatorDiT.Tests.IO;

namespace MediatorDiT.Tests.Data;

public class ImageFolderDatasetTests
{
    private static byte[] Rgb(int width, int height, int seed)
    {
        byte[] pattern = CenterCropTests.Pattern(width, height);
        for (int i = 0; i < pattern.Length; i++) pattern[i] = (byte)(pattern[i] + seed * 29);
        return pattern;
    }

    [Fact]
    public void ClassesAreSubFoldersInOrdinalOrder()
    {
        using var dir = new TempDirectory();
        foreach (string name in new[] { "b", "a", "C" })
            TestPngWriter.Write(Path.Combine(dir.Path, name, "x.png"), Rgb(10, 12, name[0]), 10, 12, 3);

        var dataset = ImageFolderDataset.Load(dir.Path, 8);

        Assert.Equal(["C", "a", "b"], dataset.ClassNames);
        Assert.Equal(3, dataset.NumClasses);
        Assert.Equal(new SampleShape(3, 8, 8), dataset.SampleShape);
        var sample = new float[3 * 8 * 8];
        dataset.Get(2, sample, out int label);
        Assert.Equal(2, label);
        Assert.EndsWith(Path.Combine("b", "x.png"), dataset.Files[2]);
    }

    [Fact]
    public void ImagesAreCenterCroppedAndScaledToPlanes()
    {
        using var dir = new TempDirectory();
        byte[] rgb = Rgb(40, 30, 1);
        TestPngWriter.Write(Path.Combine(dir.Path, "cls", "img.png"), rgb, 40, 30, 3);

        var dataset = ImageFolderDataset.Load(dir.Path, 8);
        var sample = new float[3 * 64];
        dataset.Get(0, sample, out _);

        byte[] expected = CenterCrop.Apply(rgb, 40, 30, 3, 8);
        Assert.Equal(expected, dataset.Pixels(0).ToArray());
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 64; p++)
                Assert.Equal(ImageConversion.ToFloat(expected[p * 3 + c]), sample[c * 64 + p]);
    }

    [Fact]
    public void GreyIsRepeatedAndAlphaDropped()
    {
        using var dir = new TempDirectory();
        byte[] grey = Enumerable.Range(0, 64).Select(i => (byte)(i * 4)).ToArray();
        TestPngWriter.Write(Path.Combine(dir.Path, "g", "grey.png"), grey, 8, 8, 1);
        byte[] rgba = Enumerable.Range(0, 256).Select(i => (byte)(i % 4 == 3 ? 0 : i)).ToArray();
        TestPngWriter.Write(Path.Combine(dir.Path, "r", "rgba.png"), rgba, 8, 8, 4);

        var dataset = ImageFolderDataset.Load(dir.Path, 8);

        ReadOnlySpan<byte> fromGrey = dataset.Pixels(0);
        for (int p = 0; p < 64; p++)
            Assert.True(fromGrey[3 * p] == grey[p] && fromGrey[3 * p + 1] == grey[p] && fromGrey[3 * p + 2] == grey[p]);
        ReadOnlySpan<byte> fromRgba = dataset.Pixels(1);
        for (int p = 0; p < 64; p++)
            for (int c = 0; c < 3; c++)
                Assert.Equal(rgba[4 * p + c], fromRgba[3 * p + c]);
    }

    [Fact]
    public void CorruptPngsAreSkippedWithAWarning()
    {
        using var dir = new TempDirectory();
        TestPngWriter.Write(Path.Combine(dir.Path, "a", "good.png"), Rgb(9, 9, 2), 9, 9, 3);
        File.WriteAllText(Path.Combine(dir.Path, "a", "garbage.png"), "not a png");
        byte[] truncated = TestPngWriter.Encode(Rgb(9, 9, 3), 9, 9, 3)[..40];
        TestPngWriter.Write(Path.Combine(dir.Path, "b", "ok.png"), Rgb(9, 9, 4), 9, 9, 3);
        File.WriteAllBytes(Path.Combine(dir.Path, "b", "truncated.png"), truncated);
        var messages = new List<string>();

        var dataset = ImageFolderDataset.Load(dir.Path, 8, new ListProgress(messages));

        Assert.Equal(2, dataset.SkippedFiles);
        Assert.Equal(2, dataset.Count);
        Assert.Equal([Path.Combine(dir.Path, "a", "garbage.png"), Path.Combine(dir.Path, "b", "truncated.png")], dataset.SkippedFileNames);
        Assert.Contains(messages, m => m.StartsWith("warning: skipped ", StringComparison.Ordinal) && m.Contains("garbage.png", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("warning: skipped ", StringComparison.Ordinal) && m.Contains("truncated.png", StringComparison.Ordinal));
        Assert.EndsWith("good.png", dataset.Files[0]);
        Assert.EndsWith("ok.png", dataset.Files[1]);
    }

    [Fact]
    public void NestedFoldersAreIncludedAndOtherFilesIgnored()
    {
        using var dir = new TempDirectory();
        TestPngWriter.Write(Path.Combine(dir.Path, "a", "z.png"), Rgb(8, 8, 1), 8, 8, 3);
        TestPngWriter.Write(Path.Combine(dir.Path, "a", "deeper", "y.PNG"), Rgb(8, 8, 2), 8, 8, 3);
        File.WriteAllText(Path.Combine(dir.Path, "a", "notes.txt"), "ignored");
        File.WriteAllText(Path.Combine(dir.Path, "readme.md"), "ignored too");

        var dataset = ImageFolderDataset.Load(dir.Path, 8);

        Assert.Equal(2, dataset.Count);
        Assert.Equal(0, dataset.SkippedFiles);
        Assert.EndsWith("z.png", dataset.Files[0]); // the class folder's own files come before sub-folders'
        Assert.EndsWith("y.PNG", dataset.Files[1]);
    }

    [Fact]
    public void FeedsTheLoader()
    {
        using var dir = new TempDirectory();
        for (int i = 0; i < 6; i++)
            TestPngWriter.Write(Path.Combine(dir.Path, $"class{i % 2}", $"{i}.png"), Rgb(12, 10, i), 12, 10, 3);
        var loader = new DataLoader(ImageFolderDataset.Load(dir.Path, 8), new DataLoaderOptions { BatchSize = 4, HorizontalFlip = true });

        DataBatch batch = loader.GetBatch(0);

        Assert.Equal([4, 3, 8, 8], batch.Images.Shape);
        Assert.All(batch.Images.Span.ToArray(), v => Assert.InRange(v, -1f, 1f));
    }

    [Fact]
    public void FolderProblemsAreErrors()
    {
        using var dir = new TempDirectory();

        Assert.Contains("does not exist", Assert.Throws<MediatorDiTException>(() => ImageFolderDataset.Load(dir.File("missing"), 8)).Message);
        Assert.Contains("has no sub-folders", Assert.Throws<MediatorDiTException>(() => ImageFolderDataset.Load(dir.Path, 8)).Message);
        Directory.CreateDirectory(dir.File("empty"));
        TestPngWriter.Write(Path.Combine(dir.Path, "full", "a.png"), Rgb(8, 8, 1), 8, 8, 3);
        Assert.Contains("class folder empty holds no .png files", Assert.Throws<MediatorDiTException>(() => ImageFolderDataset.Load(dir.Path, 8)).Message);
        File.WriteAllText(Path.Combine(dir.Path, "empty", "bad.png"), "x");
        Assert.Contains("class folder empty holds no readable PNG file", Assert.Throws<MediatorDiTException>(() => ImageFolderDataset.Load(dir.Path, 8)).Message);
    }
}
