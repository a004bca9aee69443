using System.Buffers.Binary;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

/// <summary>Broken PNG files must give a MediatorDiTException that names the file and the problem.</summary>
public sealed class PngDecoderMalformedTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string WriteFile(string name, byte[] bytes)
    {
        string path = _dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Vector(string name) => File.ReadAllBytes(PngTestVectors.PathOf(name));

    private static MediatorDiTException DecodeFails(string path, string expectedWords)
    {
        var error = Assert.Throws<MediatorDiTException>(() => PngDecoder.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expectedWords, error.Message);
        return error;
    }

    private static MediatorDiTException DecodeFails(byte[] png, string expectedWords)
    {
        var error = Assert.Throws<MediatorDiTException>(() => PngDecoder.Decode(png, "test.png"));
        Assert.StartsWith("test.png: ", error.Message);
        Assert.Contains(expectedWords, error.Message);
        return error;
    }

    /// <summary>Offset of the first chunk of the type (its length field).</summary>
    private static int FindChunk(byte[] png, string type)
    {
        int pos = 8;
        while (pos < png.Length)
        {
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            if (string.Concat(png.Skip(pos + 4).Take(4).Select(b => (char)b)) == type) return pos;
            pos += 12 + length;
        }
        throw new InvalidOperationException($"no {type} chunk");
    }

    [Fact]
    public void MissingFileIsReported() =>
        DecodeFails(_dir.File("absent.png"), "does not exist");

    [Fact]
    public void EmptyFile() => DecodeFails(WriteFile("empty.png", []), "empty");

    [Fact]
    public void BadSignature()
    {
        byte[] png = Vector("rgb8.png");
        png[1] = (byte)'J';
        DecodeFails(WriteFile("jpeg.png", png), "PNG signature");
    }

    [Fact]
    public void TextFileIsNotAPng() =>
        DecodeFails(WriteFile("notes.png", "hello, world"u8.ToArray()), "PNG signature");

    [Theory]
    [InlineData(5)]      // inside the signature
    [InlineData(20)]     // inside IHDR
    [InlineData(-30)]    // inside the image data
    [InlineData(-14)]    // inside the CRC of the last IDAT
    [InlineData(-12)]    // IEND missing entirely
    [InlineData(-3)]     // inside IEND's CRC
    public void TruncatedFile(int keep)
    {
        byte[] png = Vector("rgb8.png");
        int length = keep >= 0 ? keep : png.Length + keep;
        DecodeFails(WriteFile("cut.png", png[..length]), "truncated");
    }

    [Theory]
    [InlineData("IHDR")]
    [InlineData("IDAT")]
    [InlineData("tEXt")]
    [InlineData("IEND")]
    public void FlippedCrcIsDetected(string chunk)
    {
        byte[] png = Vector("f_rgb8.png");
        int at = FindChunk(png, chunk);
        int length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at));
        png[at + 8 + length] ^= 0x01;
        var error = DecodeFails(WriteFile("crc.png", png), "CRC");
        Assert.Contains(chunk, error.Message);
    }

    [Fact]
    public void FlippedDataByteIsDetectedByTheCrc()
    {
        byte[] png = Vector("rgba8.png");
        int at = FindChunk(png, "IDAT");
        png[at + 8 + 5] ^= 0x40;
        DecodeFails(WriteFile("bitrot.png", png), "CRC");
    }

    [Fact]
    public void HeaderMustComeFirst()
    {
        byte[] png = new PngTestBuilder().Chunk("gAMA", new byte[4]).Header(1, 1, 8, 0).ImageData([0, 0]).End().ToArray();
        DecodeFails(png, "must start with IHDR");
    }

    [Theory]
    [InlineData(0, 1, 8, 0, "size")]
    [InlineData(1, 1, 3, 0, "bit depth 3")]
    [InlineData(1, 1, 16, 3, "bit depth 16")]
    [InlineData(1, 1, 8, 5, "colour type 5")]
    [InlineData(1, 1, 4, 2, "bit depth 4")]
    public void InvalidHeader(int width, int height, int depth, int colourType, string words)
    {
        byte[] png = new PngTestBuilder().Header(width, height, depth, colourType).ImageData([0, 0, 0, 0, 0]).End().ToArray();
        DecodeFails(png, words);
    }

    [Fact]
    public void UnknownInterlaceMethod()
    {
        byte[] png = new PngTestBuilder().Header(1, 1, 8, 0, interlace: 2).ImageData([0, 0]).End().ToArray();
        DecodeFails(png, "interlace method 2");
    }

    [Fact]
    public void UnknownFilterType()
    {
        byte[] png = new PngTestBuilder().Header(2, 2, 8, 0).ImageData([0, 1, 2, 5, 3, 4]).End().ToArray();
        DecodeFails(png, "filter type 5");
    }

    [Fact]
    public void ImageDataTooShort()
    {
        byte[] png = new PngTestBuilder().Header(4, 4, 8, 2).ImageData(new byte[20]).End().ToArray();
        DecodeFails(png, "ends before row");
    }

    [Fact]
    public void CorruptCompressedData()
    {
        byte[] compressed = PngTestBuilder.Compress(new byte[4 * 13]);
        compressed[2] ^= 0xFF; // first deflate block header
        byte[] png = new PngTestBuilder().Header(4, 4, 8, 2).Chunk("IDAT", compressed).End().ToArray();
        DecodeFails(png, "corrupt");
    }

    [Fact]
    public void WrongAdlerChecksum()
    {
        byte[] compressed = PngTestBuilder.Compress([0, 7, 0, 9]);
        compressed[^1] ^= 0x01;
        byte[] png = new PngTestBuilder().Header(1, 2, 8, 0).Chunk("IDAT", compressed).End().ToArray();
        DecodeFails(png, "compressed image data is corrupt");
    }

    [Fact]
    public void NoImageData() =>
        DecodeFails(new PngTestBuilder().Header(1, 1, 8, 0).End().ToArray(), "no image data");

    [Fact]
    public void PaletteImageWithoutPalette() =>
        DecodeFails(new PngTestBuilder().Header(1, 1, 8, 3).ImageData([0, 0]).End().ToArray(), "PLTE");

    [Fact]
    public void PaletteIndexBeyondThePalette()
    {
        byte[] png = new PngTestBuilder().Header(2, 1, 8, 3).Chunk("PLTE", new byte[6]).ImageData([0, 1, 2]).End().ToArray();
        DecodeFails(png, "palette entry 2");
    }

    [Fact]
    public void UnknownCriticalChunk()
    {
        byte[] png = new PngTestBuilder().Header(1, 1, 8, 0).Chunk("ABCD", [1]).ImageData([0, 0]).End().ToArray();
        DecodeFails(png, "'ABCD'");
    }

    [Fact]
    public void UnknownAncillaryChunkIsSkipped()
    {
        byte[] png = new PngTestBuilder().Header(1, 1, 8, 0).Chunk("abCD", [1]).ImageData([0, 77]).Chunk("zzZz", []).End().ToArray();
        Assert.Equal(new byte[] { 77 }, PngDecoder.Decode(png, "ok").Pixels);
    }

    [Fact]
    public void ChunkLengthBeyondTheFormatLimit()
    {
        byte[] png = new PngTestBuilder().Header(1, 1, 8, 0).ImageData([0, 0]).End().ToArray();
        int at = FindChunk(png, "IDAT");
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(at), 0x80000000);
        DecodeFails(png, "more than a PNG chunk may hold");
    }

    [Fact]
    public void HugeChunkLengthInAShortFileIsTruncationNotAnAllocation()
    {
        byte[] png = new PngTestBuilder().Header(1, 1, 8, 0).ImageData([0, 0]).End().ToArray();
        int at = FindChunk(png, "IDAT");
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(at), 0x7FFFFFF0);
        DecodeFails(png, "truncated");
    }

    [Fact]
    public void GarbageWhereAChunkShouldStart()
    {
        byte[] png = Vector("g8.png");
        int at = FindChunk(png, "IDAT");
        png[at + 5] = (byte)'#';
        DecodeFails(png, "not four letters");
    }

    [Fact]
    public void ImageTooLargeForOneArray()
    {
        byte[] png = new PngTestBuilder().Header(100_000, 100_000, 8, 6).ImageData([0, 0]).End().ToArray();
        DecodeFails(png, "more than the limit of 89,478,485");
        // With the pixel limit lifted, the array size still bounds what is allocated.
        var error = Assert.Throws<MediatorDiTException>(() => PngDecoder.Decode(png, "test.png", new InputLimits { MaxImagePixels = long.MaxValue }));
        Assert.Equal("test.png: a 100000 x 100000 image is too large to decode into one array.", error.Message);
    }
}
