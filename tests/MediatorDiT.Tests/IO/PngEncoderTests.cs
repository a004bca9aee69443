using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

public sealed class PngEncoderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A mix of smooth gradients (where Sub/Up/Paeth win) and noise (where None may win).</summary>
    private static byte[] TestPixels(int width, int height, int channels, int seed = 1)
    {
        var random = new Random(seed);
        var pixels = new byte[width * height * channels];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < channels; c++)
                    pixels[(y * width + x) * channels + c] = y % 4 == 3
                        ? (byte)random.Next(256)
                        : (byte)(x * 3 + y * 5 + c * 40);
        return pixels;
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(17, 5, 1)]
    [InlineData(33, 21, 3)]
    [InlineData(8, 40, 4)]
    [InlineData(300, 2, 3)]
    public void RoundTripsThroughTheDecoder(int width, int height, int channels)
    {
        byte[] pixels = TestPixels(width, height, channels);

        DecodedImage image = PngDecoder.Decode(PngEncoder.Encode(pixels, width, height, channels), "round trip");

        Assert.Equal((width, height, channels), (image.Width, image.Height, image.Channels));
        Assert.Equal(pixels, image.Pixels);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(3, 2)]
    [InlineData(4, 6)]
    public void IndependentReaderSeesTheSamePixels(int channels, int colourType)
    {
        byte[] pixels = TestPixels(29, 23, channels, seed: 7);

        ReferencePngReader.Result png = ReferencePngReader.Read(PngEncoder.Encode(pixels, 29, 23, channels));

        Assert.Equal((29, 23, colourType), (png.Width, png.Height, png.ColourType));
        Assert.Equal(pixels, png.Pixels);
        Assert.Equal("IHDR", png.ChunkTypes[0]);
        Assert.Equal("IEND", png.ChunkTypes[^1]);
        Assert.All(png.ChunkTypes.Skip(1).SkipLast(1), type => Assert.Equal("IDAT", type));
    }

    [Fact]
    public void ChoosesFiltersPerRow()
    {
        const int width = 64, height = 32;
        var pixels = new byte[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                pixels[y * width + x] = y < 8 ? (byte)0          // flat: None costs nothing
                    : y < 16 ? (byte)(x * 4)                     // horizontal ramp: Sub
                    : y < 24 ? (byte)((x * 97 + 13) % 251)       // the same irregular row repeated: Up
                    : (byte)(x * 4 + y * 4);                     // a plane: Sub, Up and Paeth all do well

        ReferencePngReader.Result png = ReferencePngReader.Read(PngEncoder.Encode(pixels, width, height, 1));

        Assert.Equal(pixels, png.Pixels);
        Assert.Equal(0, png.RowFilters[0]);   // flat
        Assert.Equal(1, png.RowFilters[8]);   // first ramp row: only Sub (and Paeth, which ties and loses) removes it
        Assert.Equal(2, png.RowFilters[10]);  // ramp repeated
        Assert.Equal(2, png.RowFilters[20]);  // irregular row repeated
        Assert.True(png.RowFilters.Distinct().Count() >= 3);
    }

    [Fact]
    public void SmoothImagesCompressWell()
    {
        const int size = 256;
        var pixels = new byte[size * size * 3];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int o = (y * size + x) * 3;
                pixels[o] = (byte)x; pixels[o + 1] = (byte)y; pixels[o + 2] = (byte)((x + y) / 2);
            }

        byte[] png = PngEncoder.Encode(pixels, size, size, 3);

        Assert.True(png.Length < pixels.Length / 20, $"{png.Length} bytes for {pixels.Length} raw bytes.");
    }

    [Fact]
    public void LargeImagesSpanSeveralIdatChunks()
    {
        byte[] pixels = new byte[400 * 400 * 3];
        new Random(3).NextBytes(pixels);

        ReferencePngReader.Result png = ReferencePngReader.Read(PngEncoder.Encode(pixels, 400, 400, 3));

        Assert.True(png.ChunkTypes.Count(t => t == "IDAT") > 1);
        Assert.Equal(pixels, png.Pixels);
    }

    [Fact]
    public void WritesAFileAtomically()
    {
        string path = _dir.File("image.png");
        byte[] pixels = TestPixels(12, 7, 3);
        File.WriteAllText(path, "old contents");

        PngEncoder.Write(path, pixels, 12, 7, 3);

        Assert.Equal(pixels, PngDecoder.Read(path).Pixels);
        Assert.Equal(["image.png"], Directory.GetFiles(_dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void WritesADecodedImage()
    {
        string path = _dir.File("copy.png");
        DecodedImage original = PngDecoder.Read(PngTestVectors.PathOf("p8t.png"));

        PngEncoder.Write(path, original);

        DecodedImage copy = PngDecoder.Read(path);
        Assert.Equal(4, copy.Channels);
        Assert.Equal(original.Pixels, copy.Pixels);
    }

    [Fact]
    public void StreamOverloadLeavesTheStreamOpen()
    {
        using var stream = new MemoryStream();
        PngEncoder.Encode(stream, new byte[] { 1, 2, 3 }, 1, 1, 3);
        stream.WriteByte(0);
        Assert.Equal(new byte[] { 1, 2, 3 }, PngDecoder.Decode(stream.ToArray(), "s").Pixels);
    }

    [Theory]
    [InlineData(2, 2, 2, 8)]   // two channels
    [InlineData(0, 2, 3, 0)]   // empty
    [InlineData(2, 2, 3, 11)]  // one byte short
    public void RejectsBadInput(int width, int height, int channels, int bytes)
    {
        string path = _dir.File("bad.png");
        var error = Assert.Throws<MediatorDiTException>(() => PngEncoder.Write(path, new byte[bytes], width, height, channels));
        Assert.Contains(path, error.Message);
        Assert.Empty(Directory.GetFiles(_dir.Path));
    }
}
