using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Models.Vae;
using MediatorDiT.Tests.Data;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit vae decode|encode` against diffusers' outputs, on tensors and on PNGs, and its errors.</summary>
public class VaeCommandTests
{
    private const float Tol = 1e-4f;

    /// <summary>The fixture's weights without their config, so the command must read it off the shapes.</summary>
    private static string WithoutConfig(string fixture, string dir)
    {
        string path = Path.Combine(dir, "bare-" + fixture);
        var file = SafeTensors.Read(Fixtures.PathOf(fixture));
        SafeTensors.Write(path, file.Tensors);
        return path;
    }

    [Theory]
    [InlineData("vae.weights.safetensors")]
    [InlineData("vae.modern-names.weights.safetensors")]
    public void DecodeAndEncodeThroughTheCliMatchDiffusers(string fixture)
    {
        string dir = CliRunner.TempDir();
        string weights = WithoutConfig(fixture, dir);
        string io = Fixtures.PathOf("vae.io.safetensors");
        var expected = SafeTensors.Read(io);

        string decoded = Path.Combine(dir, "decoded.safetensors");
        var d = CliRunner.Run("vae", "decode", "--weights", weights, "--inputs", io, "--key", "z", "--out", decoded);
        Assert.True(d.ExitCode == 0, d.Stderr);
        Assert.Contains("block_out_channels [32, 64], layers_per_block 1, latent_channels 4", d.Stderr);
        TestData.AssertClose(expected.GetFloat("decoded").Span, SafeTensors.Read(decoded).GetFloat("decoded").Span, Tol, "decoded");

        var dr = CliRunner.Run("vae", "decode", "--weights", weights, "--inputs", io, "--key", "z_random", "--out", decoded);
        Assert.True(dr.ExitCode == 0, dr.Stderr);
        TestData.AssertClose(expected.GetFloat("decoded_random").Span, SafeTensors.Read(decoded).GetFloat("decoded").Span, Tol, "decoded_random");

        string posterior = Path.Combine(dir, "posterior.safetensors");
        var e = CliRunner.Run("vae", "encode", "--weights", weights, "--inputs", io, "--key", "x", "--out", posterior);
        Assert.True(e.ExitCode == 0, e.Stderr);
        var ours = SafeTensors.Read(posterior);
        TestData.AssertClose(expected.GetFloat("posterior.mean").Span, ours.GetFloat("posterior.mean").Span, Tol, "posterior.mean");
        TestData.AssertClose(expected.GetFloat("posterior.logvar").Span, ours.GetFloat("posterior.logvar").Span, Tol, "posterior.logvar");
    }

    [Fact]
    public void DecodeDividesByTheLatentScaleWhenGiven()
    {
        string dir = CliRunner.TempDir();
        var io = SafeTensors.Read(Fixtures.PathOf("vae.io.safetensors"));
        var scaled = io.GetFloat("z");
        for (int i = 0; i < scaled.Length; i++) scaled.Span[i] *= 0.18215f;
        string input = Path.Combine(dir, "scaled.safetensors");
        SafeTensors.Write(input, new Dictionary<string, StoredTensor> { ["samples"] = StoredTensor.FromFloat(scaled) });
        string output = Path.Combine(dir, "out.safetensors");
        var r = CliRunner.Run("vae", "decode", "--weights", Fixtures.PathOf("vae.weights.safetensors"), "--inputs", input, "--key", "samples",
            "--latent-scale", "0.18215", "--out", output);
        Assert.True(r.ExitCode == 0, r.Stderr);
        TestData.AssertClose(io.GetFloat("decoded").Span, SafeTensors.Read(output).GetFloat("decoded").Span, Tol, "decoded from scaled latents");
    }

    [Fact]
    public void PngImagesEncodeToScaledLatentsAndDecodeToPngs()
    {
        string dir = CliRunner.TempDir();
        string images = Path.Combine(dir, "images");
        var io = SafeTensors.Read(Fixtures.PathOf("vae.io.safetensors"));
        var x = io.GetFloat("x"); // (2, 3, 16, 16) in [-1, 1]
        for (int i = 0; i < 2; i++)
        {
            var image = ImageConversion.ToImage(x, i);
            TestPngWriter.Write(Path.Combine(images, $"img{i}.png"), image.Pixels, image.Width, image.Height, 3);
        }
        string weights = Fixtures.PathOf("vae.weights.safetensors");
        string latentsPath = Path.Combine(dir, "latents.safetensors");
        var e = CliRunner.Run("vae", "encode", "--weights", weights, "--inputs", images, "--out", latentsPath);
        Assert.True(e.ExitCode == 0, e.Stderr);

        // Independently: the 8-bit images the PNGs hold, through the library's encoder, times 0.18215.
        var quantised = ImageConversion.FromBytes(ImageConversion.ToBytes(x), 2, 16, 16, 3);
        var mean = VaeFiles.Load(weights).Encode(quantised).Mean;
        var latents = SafeTensors.Read(latentsPath).GetFloat("latents");
        Assert.Equal([2, 4, 8, 8], latents.Shape);
        for (int i = 0; i < mean.Length; i++) Assert.Equal(mean.Span[i] * 0.18215f, latents.Span[i], 1e-5f);

        string outDir = Path.Combine(dir, "reconstructed");
        var d = CliRunner.Run("vae", "decode", "--weights", weights, "--inputs", images, "--out", outDir);
        Assert.True(d.ExitCode == 0, d.Stderr);
        var reconstruction = VaeFiles.Load(weights).Decode(mean);
        for (int i = 0; i < 2; i++)
        {
            var png = PngDecoder.Read(Path.Combine(outDir, $"img{i}.png"));
            Assert.Equal((16, 16, 3), (png.Width, png.Height, png.Channels));
            // Equal up to a rounding step, should the two processes sum in a different order.
            var expected = ImageConversion.ToImage(reconstruction, i).Pixels;
            Assert.True(expected.Zip(png.Pixels).All(pair => Math.Abs(pair.First - pair.Second) <= 1), $"img{i}.png differs from the reconstruction.");
        }
    }

    [Fact]
    public void JpegAndWebPImagesAreEncodedAndReconstructedAsPngs()
    {
        string dir = CliRunner.TempDir();
        string images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        File.Copy(Tests.IO.ImageFileTests.VectorPath("rgb420.jpg"), Path.Combine(images, "a.JPEG"));
        File.Copy(Tests.IO.ImageFileTests.VectorPath("lossless.webp"), Path.Combine(images, "a.webp"));
        File.WriteAllText(Path.Combine(images, "notes.txt"), "not an image");
        string weights = Fixtures.PathOf("vae.weights.safetensors");
        string latentsPath = Path.Combine(dir, "latents.safetensors");

        var e = CliRunner.Run("vae", "encode", "--weights", weights, "--inputs", images, "--image-size", "16", "--out", latentsPath);
        Assert.True(e.ExitCode == 0, e.Stderr);

        // Independently: what Pillow decodes from each file, centre-cropped, through the library's encoder.
        var vae = VaeFiles.Load(weights);
        var latents = SafeTensors.Read(latentsPath).GetFloat("latents");
        Assert.Equal([2, 4, 8, 8], latents.Shape);
        string[] pillow = ["rgb420.jpg", "lossless.webp"]; // a.JPEG sorts before a.webp
        for (int k = 0; k < 2; k++)
        {
            DecodedImage rgb = PngDecoder.Read(Tests.IO.ImageFileTests.VectorPath(pillow[k] + ".pil.png")).ToRgb();
            var mean = vae.Encode(ImageConversion.FromBytes(CenterCrop.Apply(rgb.Pixels, rgb.Width, rgb.Height, 3, 16), 1, 16, 16, 3)).Mean;
            for (int i = 0; i < mean.Length; i++) Assert.Equal(mean.Span[i] * 0.18215f, latents.Span[k * mean.Length + i], 1e-5f);
        }

        // Reconstructions are PNGs named after their inputs, so a.JPEG and a.webp do not overwrite each other.
        string outDir = Path.Combine(dir, "reconstructed");
        var d = CliRunner.Run("vae", "decode", "--weights", weights, "--inputs", images, "--image-size", "16", "--out", outDir);
        Assert.True(d.ExitCode == 0, d.Stderr);
        Assert.Equal(["a.JPEG.png", "a.webp.png"], Directory.GetFiles(outDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal((16, 16), (PngDecoder.Read(Path.Combine(outDir, "a.JPEG.png")).Width, PngDecoder.Read(Path.Combine(outDir, "a.JPEG.png")).Height));
    }

    [Fact]
    public void ATruncatedJpegInputFailsWithOneSentence()
    {
        string dir = CliRunner.TempDir();
        byte[] jpeg = File.ReadAllBytes(Tests.IO.ImageFileTests.VectorPath("rgb444.jpg"));
        string path = Path.Combine(dir, "cut.jpg");
        File.WriteAllBytes(path, jpeg[..(jpeg.Length - 300)]);

        var r = CliRunner.Run("vae", "encode", "--weights", Fixtures.PathOf("vae.weights.safetensors"), "--inputs", path, "--image-size", "16",
            "--out", Path.Combine(dir, "l.safetensors"));

        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"error: {path}: the JPEG image data ends early (the file is truncated).", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.DoesNotContain("Exception", r.Stderr);
    }

    [Fact]
    public void WeightsThatDoNotFitTheirConfigFailWithOneSentenceNamingTheKey()
    {
        string dir = CliRunner.TempDir();
        string config = Path.Combine(dir, "config.json");
        File.WriteAllText(config, AutoencoderKlConfig.StableDiffusion.ToJson());
        var r = CliRunner.Run("vae", "decode", "--weights", Fixtures.PathOf("vae.weights.safetensors"), "--config", config,
            "--inputs", Fixtures.PathOf("vae.io.safetensors"), "--out", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("encoder.conv_in.weight", r.Stderr);
        Assert.Contains("block_out_channels [128, 256, 512, 512]", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "o.safetensors")));

        // A config in the file's own metadata that disagrees with its shapes.
        string lying = Path.Combine(dir, "lying.safetensors");
        var file = SafeTensors.Read(Fixtures.PathOf("vae.weights.safetensors"));
        SafeTensors.Write(lying, file.Tensors, new Dictionary<string, string> { ["config"] = (new AutoencoderKlConfig { BlockOutChannels = [32, 32], LayersPerBlock = 1 }).ToJson() });
        var m = CliRunner.Run("vae", "encode", "--weights", lying, "--inputs", Fixtures.PathOf("vae.io.safetensors"), "--out", Path.Combine(dir, "p.safetensors"));
        Assert.Equal(1, m.ExitCode);
        Assert.Contains("expects", m.Stderr);
        Assert.DoesNotContain("   at ", m.Stderr);
    }
}
