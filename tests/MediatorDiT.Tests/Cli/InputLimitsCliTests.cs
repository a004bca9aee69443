using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Tests.IO;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Cli;

/// <summary>
/// What testers fed the commands: a 40,000 x 40,000 PNG header, an npz bomb of 1.2M zero images, labels of
/// 100 million. Each now ends in one `error:` line (or, in an image folder, one skipped-file warning).
/// </summary>
public class InputLimitsCliTests
{
    private const string HugeMessage = "declares 40,000 x 40,000 = 1,600,000,000 pixels, more than the limit of 89,478,485 " +
                                       "(raise it with --max-image-pixels or MDIT_MAX_IMAGE_PIXELS if the image is genuine).";

    private static void AssertOneErrorLine(CliRunner.Result r, string expected)
    {
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"error: {expected}", r.Stderr.Split('\n').Select(l => l.TrimEnd('\r')));
        Assert.DoesNotContain("Exception", r.Stderr);
    }

    [Fact]
    public void VaeEncodeRefusesAPngDeclaring40000Squared()
    {
        string dir = CliRunner.TempDir();
        string png = Path.Combine(dir, "huge.png");
        File.WriteAllBytes(png, HostileFiles.OversizedGreyPng(40_000, 40_000));

        var r = CliRunner.Run("vae", "encode", "--weights", Fixtures.PathOf("vae.weights.safetensors"), "--inputs", png, "--out", Path.Combine(dir, "out.safetensors"));

        AssertOneErrorLine(r, $"{png}: {HugeMessage}");
    }

    [Fact]
    public void VaeEncodeRefusesAJpegDeclaring40000Squared()
    {
        string dir = CliRunner.TempDir();
        string jpeg = Path.Combine(dir, "huge.JPEG");
        File.WriteAllBytes(jpeg, SkiaTestImages.WithJpegSize(SkiaTestImages.Jpeg(new byte[16 * 16 * 3], 16, 16, 3), 40_000, 40_000));

        var r = CliRunner.Run("vae", "encode", "--weights", Fixtures.PathOf("vae.weights.safetensors"), "--inputs", jpeg, "--out", Path.Combine(dir, "out.safetensors"));

        AssertOneErrorLine(r, $"{jpeg}: {HugeMessage}");
    }

    [Fact]
    public void ThePixelLimitComesFromTheOptionOrTheEnvironment()
    {
        string dir = CliRunner.TempDir();
        string png = Path.Combine(dir, "small.png");
        PngEncoder.Write(png, new byte[8 * 8 * 3], 8, 8, 3);
        string[] args = ["vae", "encode", "--weights", Fixtures.PathOf("vae.weights.safetensors"), "--inputs", png, "--out", Path.Combine(dir, "out.safetensors")];
        string refused = $"{png}: declares 8 x 8 = 64 pixels, more than the limit of 63 (raise it with --max-image-pixels or MDIT_MAX_IMAGE_PIXELS if the image is genuine).";

        AssertOneErrorLine(CliRunner.Run([.. args, "--max-image-pixels", "63"]), refused);
        AssertOneErrorLine(CliRunner.RunWithEnvironment(new Dictionary<string, string> { ["MDIT_MAX_IMAGE_PIXELS"] = "63" }, args), refused);
        AssertOneErrorLine(CliRunner.RunWithEnvironment(new Dictionary<string, string> { ["MDIT_MAX_IMAGE_PIXELS"] = "lots" }, args),
            "$MDIT_MAX_IMAGE_PIXELS must be a positive whole number, but is 'lots'.");
        AssertOneErrorLine(CliRunner.Run([.. args, "--max-image-pixels", "0"]), "--max-image-pixels must be a positive number, got 0.");

        // The option wins over the environment.
        var allowed = CliRunner.RunWithEnvironment(new Dictionary<string, string> { ["MDIT_MAX_IMAGE_PIXELS"] = "63" }, [.. args, "--max-image-pixels", "64"]);
        Assert.True(allowed.ExitCode == 0, allowed.Stderr);
    }

    [Fact]
    public void EvalRefusesAnNpzBombOf1Point2MillionZeroImages()
    {
        string dir = CliRunner.TempDir();
        string npz = Path.Combine(dir, "samples.npz");
        File.WriteAllBytes(npz, HostileFiles.ZeroImageBombNpz(1_228_800));

        var r = CliRunner.Run("eval", "--samples", npz);

        AssertOneErrorLine(r, $"{npz}: declares array 'arr_0' as |u1 (1228800, 32, 32) with 1,258,291,200 elements, more than the limit of 268,435,456 " +
                              "(raise it with --max-array-elements or MDIT_MAX_ARRAY_ELEMENTS if the file is genuine).");
    }

    [Fact]
    public void EvalRefusesAnOversizedPngAmongTheSamples()
    {
        string dir = CliRunner.TempDir();
        PngEncoder.Write(Path.Combine(dir, "000000.png"), new byte[32 * 32], 32, 32, 1);
        string huge = Path.Combine(dir, "000001.png");
        File.WriteAllBytes(huge, HostileFiles.OversizedGreyPng(40_000, 40_000));

        AssertOneErrorLine(CliRunner.Run("eval", "--samples", dir), $"{huge}: {HugeMessage}");
    }

    [Fact]
    public void TrainRefusesLatentLabelsOf100Million()
    {
        string dir = CliRunner.TempDir();
        string npz = Path.Combine(dir, "latents.npz");
        using (var writer = new NpzWriter(npz))
        {
            writer.WriteArray(LatentDataset.LatentsKey, StoredTensor.FromFloat(new float[2 * 4 * 4 * 4], [2, 4, 4, 4]));
            writer.WriteArray(LatentDataset.LabelsKey, StoredTensor.FromInt64([0, 100_000_000], [2]));
            writer.Complete();
        }

        var r = CliRunner.Run("train", "--dataset", "latents:" + npz, "--steps", "1", "--out", Path.Combine(dir, "run"), "--no-progress");

        AssertOneErrorLine(r, $"{npz}: label 1 is 100000000, but without num_classes in the file at most 100,000 classes (labels 0..99999) are accepted.");
    }

    [Fact]
    public void TrainOnAFolderSkipsAnOversizedPngWithAWarning()
    {
        string dir = CliRunner.TempDir();
        string images = Path.Combine(dir, "images");
        foreach (string cls in new[] { "a", "b" })
        {
            Directory.CreateDirectory(Path.Combine(images, cls));
            PngEncoder.Write(Path.Combine(images, cls, "0.png"), Enumerable.Range(0, 8 * 8 * 3).Select(i => (byte)(i + cls[0])).ToArray(), 8, 8, 3);
        }
        string huge = Path.Combine(images, "a", "1.png");
        File.WriteAllBytes(huge, HostileFiles.OversizedGreyPng(40_000, 40_000));
        // JPEGs are read and limited alike.
        File.WriteAllBytes(Path.Combine(images, "b", "2.JPEG"), SkiaTestImages.Jpeg(SkiaTestImages.Smooth(10, 9, 3), 10, 9, 3));
        string hugeJpeg = Path.Combine(images, "b", "3.JPEG");
        File.WriteAllBytes(hugeJpeg, SkiaTestImages.WithJpegSize(SkiaTestImages.Jpeg(new byte[16 * 16 * 3], 16, 16, 3), 40_000, 40_000));
        string config = Path.Combine(dir, "run.json");
        File.WriteAllText(config, new TrainConfig
        {
            Model = "custom",
            ModelConfig = new ModelConfig { HiddenSize = 16, Depth = 1, NumHeads = 2, PatchSize = 2, LearnSigma = false },
            Mediators = [4], ImageSize = 8, BatchSize = 2, Steps = 1, CheckpointEvery = 1,
        }.ToJson());

        var r = CliRunner.Run("train", "--config", config, "--dataset", "folder:" + images, "--out", Path.Combine(dir, "run"), "--no-progress");

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"warning: skipped {huge}, it is not a readable image ({huge}: {HugeMessage.TrimEnd('.')})", r.Stdout + r.Stderr);
        Assert.Contains($"warning: skipped {hugeJpeg}, it is not a readable image ({hugeJpeg}: {HugeMessage.TrimEnd('.')})", r.Stdout + r.Stderr);
        Assert.DoesNotContain("Exception", r.Stdout + r.Stderr);
    }
}
