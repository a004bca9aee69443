using System.Buffers.Binary;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// <see cref="ImageFile"/>: JPEG and WebP through SkiaSharp, PNG through <see cref="PngDecoder"/>, the format
/// told from the bytes. The vectors in Data/jpeg were written by Pillow, which also decoded each one into a
/// PNG beside it (make_vectors.py); the rest are encoded here with SkiaSharp.
/// </summary>
public sealed class ImageFileTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    public static string VectorDir => Path.Combine(Fixtures.RepoRoot, "tests", "MediatorDiT.Tests", "Data", "jpeg");

    public static string VectorPath(string name) => Path.Combine(VectorDir, name);

    public static TheoryData<string, int> Vectors => new()
    {
        { "rgb420.jpg", 3 }, { "rgb422.jpg", 3 }, { "rgb444.jpg", 3 }, { "progressive.jpg", 3 }, { "optimized.jpg", 3 },
        { "grey.jpg", 1 }, { "cmyk.jpg", 3 }, { "exif6.jpg", 3 },
        { "lossless.webp", 3 }, { "lossless_alpha.webp", 4 }, { "lossy.webp", 3 }, { "lossy_alpha.webp", 4 },
    };

    [Theory]
    [MemberData(nameof(Vectors))]
    public void PillowsVectorsDecodeToThePixelsPillowDecodes(string name, int channels)
    {
        DecodedImage image = ImageFile.Read(VectorPath(name));
        DecodedImage pillow = PngDecoder.Read(VectorPath(name + ".pil.png"));

        Assert.Equal((37, 29, channels), (image.Width, image.Height, image.Channels));
        Assert.Equal(pillow.Channels, image.Channels);
        int mismatch = Enumerable.Range(0, image.Pixels.Length).FirstOrDefault(i => image.Pixels[i] != pillow.Pixels[i], -1);
        Assert.True(mismatch < 0, mismatch < 0 ? "" :
            $"{name}: pixel ({mismatch / channels % 37}, {mismatch / channels / 37}) channel {mismatch % channels} is {image.Pixels[mismatch]}, Pillow gives {pillow.Pixels[mismatch]}.");
    }

    [Fact]
    public void TheExifOrientationIsIgnoredAsPillowIgnoresIt()
    {
        // exif6.jpg is rgb420.jpg's image with orientation 6 (view rotated 90 degrees): the stored pixels, unrotated.
        DecodedImage oriented = ImageFile.Read(VectorPath("exif6.jpg"));
        Assert.Equal((37, 29), (oriented.Width, oriented.Height));
        Assert.Equal(ImageFile.Read(VectorPath("rgb420.jpg")).Pixels, oriented.Pixels);
    }

    [Fact]
    public void LosslessVectorsHoldTheSourcePixels()
    {
        Assert.Equal(PngDecoder.Read(VectorPath("source.png")).Pixels, ImageFile.Read(VectorPath("lossless.webp")).Pixels);
    }

    [Fact]
    public void AJpegIsCloseToItsSourceAndAGreyJpegHasOneChannel()
    {
        byte[] rgb = SkiaTestImages.Smooth(37, 29, 3);
        DecodedImage colour = ImageFile.Decode(SkiaTestImages.Jpeg(rgb, 37, 29, 3, quality: 100, subsample: false), "colour.jpg");
        Assert.Equal((37, 29, 3), (colour.Width, colour.Height, colour.Channels));
        AssertClose(rgb, colour.Pixels, maxError: 6, meanError: 1.0);

        // 4:2:0 halves the chroma resolution: larger errors, still bounded.
        DecodedImage subsampled = ImageFile.Decode(SkiaTestImages.Jpeg(rgb, 37, 29, 3, quality: 90), "subsampled.jpg");
        AssertClose(rgb, subsampled.Pixels, maxError: 20, meanError: 3.0);

        byte[] grey = SkiaTestImages.Smooth(37, 29, 1);
        DecodedImage greyImage = ImageFile.Decode(SkiaTestImages.Jpeg(grey, 37, 29, 1, quality: 100), "grey.jpg");
        Assert.Equal(1, greyImage.Channels);
        AssertClose(grey, greyImage.Pixels, maxError: 2, meanError: 0.25);
    }

    private static void AssertClose(byte[] expected, byte[] actual, int maxError, double meanError)
    {
        Assert.Equal(expected.Length, actual.Length);
        int max = 0;
        double sum = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            int d = Math.Abs(expected[i] - actual[i]);
            max = Math.Max(max, d);
            sum += d;
        }
        Assert.True(max <= maxError && sum / expected.Length <= meanError, $"largest error {max} (allowed {maxError}), mean {sum / expected.Length:F3} (allowed {meanError})");
    }

    [Fact]
    public void LosslessWebPIsExactWithAndWithoutAlpha()
    {
        byte[] rgb = SkiaTestImages.Smooth(23, 17, 3);
        DecodedImage opaque = ImageFile.Decode(SkiaTestImages.WebP(rgb, 23, 17, 3, lossless: true), "opaque.webp");
        Assert.Equal(3, opaque.Channels);
        Assert.Equal(rgb, opaque.Pixels);

        byte[] rgba = SkiaTestImages.Smooth(23, 17, 4);
        DecodedImage translucent = ImageFile.Decode(SkiaTestImages.WebP(rgba, 23, 17, 4, lossless: true), "translucent.webp");
        Assert.Equal(4, translucent.Channels);
        for (int p = 0; p < 23 * 17; p++)
        {
            // Unpremultiplied: colours come back exactly wherever they are visible (the encoder may change fully transparent ones).
            Assert.Equal(rgba[4 * p + 3], translucent.Pixels[4 * p + 3]);
            if (rgba[4 * p + 3] == 0) continue;
            for (int c = 0; c < 3; c++) Assert.Equal(rgba[4 * p + c], translucent.Pixels[4 * p + c]);
        }
    }

    [Fact]
    public void TheFormatIsToldFromTheBytesNotTheName()
    {
        byte[] rgb = SkiaTestImages.Smooth(9, 7, 3);
        string jpegNamedPng = _dir.File("photo.png");
        File.WriteAllBytes(jpegNamedPng, SkiaTestImages.Jpeg(rgb, 9, 7, 3));
        Assert.Equal((9, 7, 3), (ImageFile.Read(jpegNamedPng).Width, ImageFile.Read(jpegNamedPng).Height, ImageFile.Read(jpegNamedPng).Channels));

        // ImageNet holds such files: a PNG named .JPEG.
        string pngNamedJpeg = _dir.File("n02105855_2933.JPEG");
        PngEncoder.Write(pngNamedJpeg, rgb, 9, 7, 3);
        Assert.Equal(rgb, ImageFile.Read(pngNamedJpeg).Pixels);

        string webpNamedJpg = _dir.File("x.jpg");
        File.WriteAllBytes(webpNamedJpg, SkiaTestImages.WebP(rgb, 9, 7, 3, lossless: true));
        Assert.Equal(rgb, ImageFile.Read(webpNamedJpg).Pixels);

        Assert.Equal(ImageFormat.Png, ImageFile.Sniff(File.ReadAllBytes(pngNamedJpeg)));
        Assert.Equal(ImageFormat.Jpeg, ImageFile.Sniff(File.ReadAllBytes(jpegNamedPng)));
        Assert.Equal(ImageFormat.WebP, ImageFile.Sniff(File.ReadAllBytes(webpNamedJpg)));
        Assert.Null(ImageFile.Sniff("GIF89a"u8));
        Assert.Null(ImageFile.Sniff("RIFF\x24\0\0\0WAVEfmt "u8));
    }

    [Fact]
    public void OtherFilesAreRefusedInOneSentence()
    {
        string gif = _dir.File("anim.jpg");
        File.WriteAllBytes(gif, "GIF89a\x01\0\x01\0"u8.ToArray());
        Assert.Equal($"{gif}: is not a PNG, JPEG or WebP image (it starts with the bytes 4749463839610100), or it is corrupt.",
            Assert.Throws<MediatorDiTException>(() => ImageFile.Read(gif)).Message);

        string empty = _dir.File("empty.webp");
        File.WriteAllBytes(empty, []);
        Assert.Equal($"{empty}: is empty, not an image file.", Assert.Throws<MediatorDiTException>(() => ImageFile.Read(empty)).Message);

        string missing = _dir.File("missing.jpg");
        Assert.Equal($"{missing}: the file does not exist.", Assert.Throws<MediatorDiTException>(() => ImageFile.Read(missing)).Message);
    }

    [Theory]
    [InlineData("a.png", true)]
    [InlineData("n01440764_10026.JPEG", true)]
    [InlineData("b.Jpg", true)]
    [InlineData("c.jpeg", true)]
    [InlineData("d.WEBP", true)]
    [InlineData("e.gif", false)]
    [InlineData("f.jpeg.txt", false)]
    [InlineData("jpg", false)]
    public void FolderListingsKnowImagesByTheirExtensionInAnyCase(string name, bool image)
    {
        Assert.Equal(image, ImageFile.HasImageExtension(name));
    }

    [Fact]
    public void AJpegHeaderDeclaringTooManyPixelsIsRefusedBeforeDecoding()
    {
        byte[] small = SkiaTestImages.Jpeg(new byte[16 * 16 * 3], 16, 16, 3);
        string path = _dir.File("huge.jpg");
        File.WriteAllBytes(path, SkiaTestImages.WithJpegSize(small, 40_000, 40_000));

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<MediatorDiTException>(() => ImageFile.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal($"{path}: declares 40,000 x 40,000 = 1,600,000,000 pixels, more than the limit of 89,478,485 " +
                     "(raise it with --max-image-pixels or MDIT_MAX_IMAGE_PIXELS if the image is genuine).", error.Message);
        Assert.True(allocated < 1 << 20, $"{allocated} bytes were allocated to refuse the file");

        // The limit is the caller's: just above and just below a small image's size.
        byte[] eightBySix = SkiaTestImages.Jpeg(new byte[8 * 6 * 3], 8, 6, 3);
        Assert.Equal("small.jpg: declares 8 x 6 = 48 pixels, more than the limit of 47 (raise it with --max-image-pixels or MDIT_MAX_IMAGE_PIXELS if the image is genuine).",
            Assert.Throws<MediatorDiTException>(() => ImageFile.Decode(eightBySix, "small.jpg", new InputLimits { MaxImagePixels = 47 })).Message);
        Assert.Equal(8, ImageFile.Decode(eightBySix, "small.jpg", new InputLimits { MaxImagePixels = 48 }).Width);
    }

    [Fact]
    public void AWebPHeaderDeclaringTooManyPixelsIsRefusedBeforeDecoding()
    {
        byte[] webp = SkiaTestImages.WebP(new byte[16 * 16 * 3], 16, 16, 3, lossless: true);
        Assert.True(webp.AsSpan(12, 4).SequenceEqual("VP8L"u8) && webp[20] == 0x2F, "expected a simple lossless WebP");
        // VP8L: after the signature byte, 14 bits of width - 1 and 14 of height - 1, least significant first.
        uint bits = BinaryPrimitives.ReadUInt32LittleEndian(webp.AsSpan(21));
        BinaryPrimitives.WriteUInt32LittleEndian(webp.AsSpan(21), (bits & ~0x0FFFFFFFu) | 16383u | 16383u << 14);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<MediatorDiTException>(() => ImageFile.Decode(webp, "huge.webp"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal("huge.webp: declares 16,384 x 16,384 = 268,435,456 pixels, more than the limit of 89,478,485 " +
                     "(raise it with --max-image-pixels or MDIT_MAX_IMAGE_PIXELS if the image is genuine).", error.Message);
        Assert.True(allocated < 1 << 20, $"{allocated} bytes were allocated to refuse the file");
    }

    [Fact]
    public void TruncatedFilesGiveOneSentenceNamingThem()
    {
        byte[] jpeg = SkiaTestImages.Jpeg(SkiaTestImages.Smooth(37, 29, 3), 37, 29, 3);
        int scan = SkiaTestImages.StartOfFrame(jpeg) + 40;
        string path = _dir.File("cut.jpg");

        File.WriteAllBytes(path, jpeg[..(jpeg.Length - 100)]);
        Assert.Equal($"{path}: the JPEG image data ends early (the file is truncated).", Assert.Throws<MediatorDiTException>(() => ImageFile.Read(path)).Message);
        File.WriteAllBytes(path, jpeg[..scan]);
        Assert.Equal($"{path}: is not a readable JPEG file: its header ends early (the file is truncated).",
            Assert.Throws<MediatorDiTException>(() => ImageFile.Read(path)).Message);
        File.WriteAllBytes(path, jpeg[..2]);
        Assert.Equal($"{path}: is not a readable JPEG file: its header ends early (the file is truncated).",
            Assert.Throws<MediatorDiTException>(() => ImageFile.Read(path)).Message);

        byte[] webp = SkiaTestImages.WebP(SkiaTestImages.Smooth(37, 29, 3), 37, 29, 3, lossless: false);
        string webpPath = _dir.File("cut.webp");
        File.WriteAllBytes(webpPath, webp[..(webp.Length / 2)]);
        Assert.Equal($"{webpPath}: the WebP image data ends early (the file is truncated).",
            Assert.Throws<MediatorDiTException>(() => ImageFile.Read(webpPath)).Message);
        File.WriteAllBytes(webpPath, webp[..10]);
        Assert.Equal($"{webpPath}: is not a readable WebP file: its header ends early (the file is truncated).",
            Assert.Throws<MediatorDiTException>(() => ImageFile.Read(webpPath)).Message);
    }

    [Fact]
    public void ManyThreadsDecodeAtOnce()
    {
        // The image-folder loaders decode in parallel; every decode has its own codec.
        byte[] jpeg = File.ReadAllBytes(VectorPath("rgb420.jpg"));
        byte[] expected = PngDecoder.Read(VectorPath("rgb420.jpg.pil.png")).Pixels;
        var results = new byte[64][];
        Parallel.For(0, results.Length, i => results[i] = ImageFile.Decode(jpeg, $"copy {i}").Pixels);
        Assert.All(results, r => Assert.Equal(expected, r));
    }
}
