using MediatorDiT.Evaluation;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>Reading samples as `mdit sample` writes them: .npz (arr_0 NHWC, labels in arr_1 or run.json) and PNG folders.</summary>
public class SampleFilesTests
{
    private static string RunJson(params (int Index, int Label)[] records) =>
        System.Text.Json.JsonSerializer.Serialize(new { images = records.Length, samples = records.Select(r => new { index = r.Index, label = r.Label, gflops = 1.0 }) });

    [Fact]
    public void NpzImagesAndLabelsFromArr1OrRunJson()
    {
        string dir = Cli.CliRunner.TempDir();
        string path = Path.Combine(dir, "samples.npz");
        var pixels = new byte[4 * 2 * 2 * 3];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 5);
        using (var w = new NpzWriter(path))
        {
            w.WriteArray("arr_0", new StoredTensor(DType.U8, [4, 2, 2, 3], pixels));
            w.WriteArray("arr_1", StoredTensor.FromInt64([3, 1, 4, 1], [4]));
            w.Complete();
        }
        var set = SampleFiles.Load(path);
        Assert.Equal([4, 3, 2, 2], set.Images.Shape);
        Assert.Equal([3, 1, 4, 1], set.Labels!);
        // Pixel (y 0, x 1) of image 1, green: byte index ((1 * 2 + 0) * 2 + 1) * 3 + 1.
        Assert.Equal(MediatorDiT.Data.ImageConversion.ToFloat(pixels[(1 * 4 + 1) * 3 + 1]), set.Images.Data[(1 * 3 + 1) * 4 + 1]);

        // run.json beside the npz: labels in record order (the npz's order, also for one rank of several).
        File.WriteAllText(Path.Combine(dir, "run.json"), RunJson((5, 2), (1, 0), (9, 7), (3, 3)));
        Assert.Equal([2, 0, 7, 3], SampleFiles.Load(path, Path.Combine(dir, "run.json")).Labels!);
        Assert.Null(SampleFiles.Load(path, "none").Labels);
        var e = Assert.Throws<MediatorDiTException>(() => SampleFiles.Load(path, "arr_9"));
        Assert.Contains("arr_9", e.Message);
    }

    [Fact]
    public void PngFolderLabelsAreMatchedByTheNumberInTheFileName()
    {
        string dir = Cli.CliRunner.TempDir();
        for (int i = 0; i < 3; i++)
            PngEncoder.Write(Path.Combine(dir, $"{i * 2:D6}.png"), new DecodedImage(2, 2, 1, [(byte)i, 0, 0, 255]));
        PngEncoder.Write(Path.Combine(dir, "grid.png"), new DecodedImage(4, 4, 1, new byte[16]));
        File.WriteAllText(Path.Combine(dir, "run.json"), RunJson((4, 9), (0, 5), (2, 6)));
        var set = SampleFiles.Load(dir);
        Assert.Equal([3, 1, 2, 2], set.Images.Shape);
        Assert.Equal([5, 6, 9], set.Labels!);
        Assert.Equal(MediatorDiT.Data.ImageConversion.ToFloat(2), set.Images.Data[2 * 4]);
    }

    [Fact]
    public void AFolderOfJpegAndWebPSamplesIsReadLikePngs()
    {
        string dir = Cli.CliRunner.TempDir();
        File.Copy(Tests.IO.ImageFileTests.VectorPath("rgb444.jpg"), Path.Combine(dir, "000000.jpg"));
        File.Copy(Tests.IO.ImageFileTests.VectorPath("lossless.webp"), Path.Combine(dir, "000001.WEBP"));
        File.WriteAllText(Path.Combine(dir, "run.json"), RunJson((0, 3), (1, 8)));

        var set = SampleFiles.Load(dir);

        Assert.Equal([2, 3, 29, 37], set.Images.Shape);
        Assert.Equal([3, 8], set.Labels!);
        byte[] pillow = PngDecoder.Read(Tests.IO.ImageFileTests.VectorPath("rgb444.jpg.pil.png")).Pixels;
        Assert.Equal(MediatorDiT.Data.ImageConversion.ToFloat(pillow[3 * 5 + 1]), set.Images.Data[29 * 37 + 5]); // green of pixel (5, 0)
    }

    [Fact]
    public void AnNpzWithoutImagesNamesWhatItHas()
    {
        string dir = Cli.CliRunner.TempDir();
        string path = Path.Combine(dir, "x.npz");
        using (var w = new NpzWriter(path))
        {
            w.WriteArray("latents", StoredTensor.FromFloat(new float[4], [4]));
            w.Complete();
        }
        var e = Assert.Throws<MediatorDiTException>(() => SampleFiles.Load(path));
        Assert.Contains("arr_0", e.Message);
        Assert.Contains("latents", e.Message);
    }
}
