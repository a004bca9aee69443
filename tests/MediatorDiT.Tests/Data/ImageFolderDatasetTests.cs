using MediatorDiT.Data;
using MediatorDiT.IO;
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
    public void JpegAndWebPFilesAreReadAsImageNetIsLaidOut()
    {
        // ImageNet's layout: synset folders of *.JPEG; WebP and PNG files may sit beside them.
        using var dir = new TempDirectory();
        string tench = Path.Combine(dir.Path, "n01440764"), goldfish = Path.Combine(dir.Path, "n01443537");
        Directory.CreateDirectory(tench);
        Directory.CreateDirectory(goldfish);
        File.Copy(ImageFileTests.VectorPath("rgb420.jpg"), Path.Combine(tench, "n01440764_10026.JPEG"));
        File.Copy(ImageFileTests.VectorPath("cmyk.jpg"), Path.Combine(tench, "n01440764_10027.JPEG"));
        File.Copy(ImageFileTests.VectorPath("grey.jpg"), Path.Combine(goldfish, "a.jpg"));
        File.Copy(ImageFileTests.VectorPath("lossy_alpha.webp"), Path.Combine(goldfish, "b.webp"));
        TestPngWriter.Write(Path.Combine(goldfish, "c.png"), Rgb(40, 30, 1), 40, 30, 3);

        var dataset = ImageFolderDataset.Load(dir.Path, 16);

        Assert.Equal(["n01440764", "n01443537"], dataset.ClassNames);
        Assert.Equal(5, dataset.Count);
        Assert.Equal(0, dataset.SkippedFiles);
        Assert.Equal(["n01440764_10026.JPEG", "n01440764_10027.JPEG", "a.jpg", "b.webp", "c.png"], dataset.Files.Select(Path.GetFileName));
        // Each sample is the ADM crop of what Pillow decodes from the file (grey repeated, alpha dropped).
        string[] pillow = ["rgb420.jpg", "cmyk.jpg", "grey.jpg", "lossy_alpha.webp"];
        for (int i = 0; i < pillow.Length; i++)
        {
            DecodedImage rgb = PngDecoder.Read(ImageFileTests.VectorPath(pillow[i] + ".pil.png")).ToRgb();
            Assert.Equal(CenterCrop.Apply(rgb.Pixels, rgb.Width, rgb.Height, 3, 16), dataset.Pixels(i).ToArray());
        }
        Assert.Equal(CenterCrop.Apply(Rgb(40, 30, 1), 40, 30, 3, 16), dataset.Pixels(4).ToArray());
    }

    [Fact]
    public void CorruptJpegsAreSkippedWithAWarning()
    {
        using var dir = new TempDirectory();
        byte[] jpeg = File.ReadAllBytes(ImageFileTests.VectorPath("rgb420.jpg"));
        string cls = Path.Combine(dir.Path, "a");
        Directory.CreateDirectory(cls);
        File.WriteAllBytes(Path.Combine(cls, "good.JPEG"), jpeg);
        string truncated = Path.Combine(cls, "truncated.JPEG");
        File.WriteAllBytes(truncated, jpeg[..(jpeg.Length / 2)]);
        string text = Path.Combine(cls, "text.jpg");
        File.WriteAllText(text, "not a jpeg");
        var messages = new List<string>();

        var dataset = ImageFolderDataset.Load(dir.Path, 8, new ListProgress(messages));

        Assert.Equal(1, dataset.Count);
        Assert.Equal([text, truncated], dataset.SkippedFileNames);
        Assert.Contains($"warning: skipped {truncated}, it is not a readable image ({truncated}: the JPEG image data ends early (the file is truncated))", messages);
        Assert.Contains(messages, m => m.StartsWith($"warning: skipped {text}, it is not a readable image ({text}: is not a PNG, JPEG or WebP image", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("skipped 2 unreadable image files, kept 1", StringComparison.Ordinal));
    }

    [Fact]
    public void FolderProblemsAreErrors()
    {
        using var dir = new TempDirectory();

        Assert.Contains("does not exist", Assert.Throws<MediatorDiTException>(() => ImageFolderDataset.Load(dir.File("missing"), 8)).Message);
        Assert.Contains("has no sub-folders", Assert.Throws<MediatorDiTException>(() => ImageFolderDataset.Load(dir.Path, 8)).Message);
        Directory.CreateDirectory(dir.File("empty"));
        TestPngWriter.Write(Path.Combine(dir.Path, "full", "a.png"), Rgb(8, 8, 1), 8, 8, 3);
        Assert.Contains("class folder empty holds no .png, .jpg, .jpeg or .webp files", Assert.Throws<MediatorDiTException>(() => ImageFolderDataset.Load(dir.Path, 8)).Message);
        File.WriteAllText(Path.Combine(dir.Path, "empty", "bad.png"), "x");
        Assert.Contains("class folder empty holds no readable image", Assert.Throws<MediatorDiTException>(() => ImageFolderDataset.Load(dir.Path, 8)).Message);
    }
}
