using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Models.Vae;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Data;
using MediatorDiT.Tests.IO;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit encode-latents`: an image folder into the trainer's latent format, with flips and a corrupt file.</summary>
public class EncodeLatentsCommandTests
{
    [Fact]
    public void AFolderBecomesLatentsTheTrainerReadsAndACorruptPngIsSkippedAndCounted()
    {
        string dir = CliRunner.TempDir();
        string images = Path.Combine(dir, "images");
        var rng = new RandomSource(11);
        // Two classes; sizes that need the crop (20x24 and 18x16 -> 16x16 with the fixture VAE's factor 2).
        var files = new[] { ("cat", "a.png", 20, 24), ("cat", "b.png", 16, 16), ("dog", "c.png", 18, 16) };
        var pixels = new Dictionary<string, (byte[] Bytes, int W, int H)>();
        foreach (var (cls, name, w, h) in files)
        {
            var bytes = new byte[w * h * 3];
            for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)(rng.NextUInt64() & 0xFF);
            TestPngWriter.Write(Path.Combine(images, cls, name), bytes, w, h, 3);
            pixels[name] = (bytes, w, h);
        }
        string corrupt = Path.Combine(images, "dog", "broken.png");
        File.WriteAllBytes(corrupt, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);

        string weights = Fixtures.PathOf("vae.weights.safetensors");
        string output = Path.Combine(dir, "latents.npz");
        var r = CliRunner.Run("encode-latents", "--images", images, "--vae", weights, "--out", output, "--image-size", "16", "--hflip", "--mean", "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"warning: skipped {corrupt}", r.Stderr);
        Assert.Contains("skipped 1 unreadable image file", r.Stdout);
        Assert.Contains("encoded 3 images of 2 classes into 6 latents", r.Stdout);

        var data = LatentDataset.Load(output);
        Assert.Equal(6, data.Count);
        Assert.Equal(2, data.NumClasses);
        Assert.Equal(new SampleShape(4, 8, 8), data.SampleShape);

        // Independently: crop, flip, encode with the library VAE, posterior mean times 0.18215.
        var vae = VaeFiles.Load(weights);
        string[] order = ["a.png", "b.png", "c.png"];
        int[] labels = [0, 0, 1];
        var sample = new float[4 * 8 * 8];
        for (int k = 0; k < order.Length; k++)
        {
            var (bytes, w, h) = pixels[order[k]];
            var cropped = CenterCrop.Apply(bytes, w, h, 3, 16);
            for (int copy = 0; copy < 2; copy++)
            {
                var image = ImageConversion.FromBytes(copy == 0 ? cropped : MirrorRows(cropped, 16, 16), 1, 16, 16, 3);
                var mean = vae.Encode(image).Mean;
                data.Get(2 * k + copy, sample, out int label);
                Assert.Equal(labels[k], label);
                for (int i = 0; i < sample.Length; i++) Assert.Equal(mean.Span[i] * 0.18215f, sample[i], 1e-5f);
            }
        }
    }

    [Fact]
    public void AFolderOfJpegsAsImageNetLaysItOutBecomesTheLatentsOfWhatPillowDecodes()
    {
        string dir = CliRunner.TempDir();
        string images = Path.Combine(dir, "train");
        // Synset folders of *.JPEG (one a CMYK JPEG, as ImageNet has a few), a WebP, and a truncated JPEG.
        var files = new[] { ("n01440764", "n01440764_10026.JPEG", "rgb420.jpg"), ("n01440764", "n01440764_10027.JPEG", "cmyk.jpg"),
                            ("n01443537", "n01443537_1.JPEG", "progressive.jpg"), ("n01443537", "n01443537_2.webp", "lossy.webp") };
        foreach (var (cls, name, vector) in files)
        {
            Directory.CreateDirectory(Path.Combine(images, cls));
            File.Copy(ImageFileTests.VectorPath(vector), Path.Combine(images, cls, name));
        }
        byte[] whole = File.ReadAllBytes(ImageFileTests.VectorPath("rgb444.jpg"));
        string truncated = Path.Combine(images, "n01443537", "n01443537_3.JPEG");
        File.WriteAllBytes(truncated, whole[..(whole.Length * 2 / 3)]);

        string weights = Fixtures.PathOf("vae.weights.safetensors");
        string output = Path.Combine(dir, "latents.npz");
        var r = CliRunner.Run("encode-latents", "--images", images, "--vae", weights, "--out", output, "--image-size", "16", "--mean", "--no-progress");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"warning: skipped {truncated}, it is not a readable image ({truncated}: the JPEG image data ends early (the file is truncated))", r.Stderr);
        Assert.Contains("encoded 4 images of 2 classes into 4 latents", r.Stdout);
        Assert.Contains("skipped 1 unreadable image file", r.Stdout);

        // Independently: Pillow's decoding of each file, the ADM crop, the library VAE's posterior mean times 0.18215.
        var data = LatentDataset.Load(output);
        var vae = VaeFiles.Load(weights);
        var sample = new float[4 * 8 * 8];
        for (int k = 0; k < files.Length; k++)
        {
            DecodedImage rgb = PngDecoder.Read(ImageFileTests.VectorPath(files[k].Item3 + ".pil.png")).ToRgb();
            var image = ImageConversion.FromBytes(CenterCrop.Apply(rgb.Pixels, rgb.Width, rgb.Height, 3, 16), 1, 16, 16, 3);
            var mean = vae.Encode(image).Mean;
            data.Get(k, sample, out int label);
            Assert.Equal(k < 2 ? 0 : 1, label);
            for (int i = 0; i < sample.Length; i++) Assert.Equal(mean.Span[i] * 0.18215f, sample[i], 1e-5f);
        }
    }

    [Fact]
    public void BadOutputsAndFoldersFailBeforeTheVaeIsLoaded()
    {
        string dir = CliRunner.TempDir();
        var wrongExtension = CliRunner.Run("encode-latents", "--images", dir, "--vae", Fixtures.PathOf("vae.weights.safetensors"), "--out", Path.Combine(dir, "l.bin"));
        Assert.Equal(1, wrongExtension.ExitCode);
        Assert.Contains(".npz", wrongExtension.Stderr);

        var noClasses = CliRunner.Run("encode-latents", "--images", dir, "--vae", Fixtures.PathOf("vae.weights.safetensors"), "--out", Path.Combine(dir, "l.npz"));
        Assert.Equal(1, noClasses.ExitCode);
        Assert.Contains("no sub-folders", noClasses.Stderr);
        Assert.DoesNotContain("   at ", noClasses.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "l.npz")));
    }

    private static byte[] MirrorRows(byte[] hwc, int width, int height)
    {
        var mirrored = new byte[hwc.Length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                    mirrored[(y * width + x) * 3 + c] = hwc[(y * width + (width - 1 - x)) * 3 + c];
        return mirrored;
    }
}
