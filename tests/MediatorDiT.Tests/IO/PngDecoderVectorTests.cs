using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

/// <summary>Decodes PNG files that other encoders wrote (libpng, a separate Python writer).</summary>
public class PngDecoderVectorTests
{
    [Theory]
    [MemberData(nameof(PngTestVectors.Names), MemberType = typeof(PngTestVectors))]
    public void DecodesVectorToTheKnownPixels(string name)
    {
        PngTestVectors.Vector vector = PngTestVectors.Get(name);

        DecodedImage image = PngDecoder.Read(PngTestVectors.PathOf(name));

        Assert.Equal(vector.Width, image.Width);
        Assert.Equal(vector.Height, image.Height);
        Assert.Equal(PngTestVectors.ExpectedChannels(vector), image.Channels);
        byte[] expected = PngTestVectors.ExpectedRgba(vector);
        byte[] actual = image.ToRgba().Pixels;
        int mismatch = Enumerable.Range(0, expected.Length).FirstOrDefault(i => expected[i] != actual[i], -1);
        Assert.True(mismatch < 0, mismatch < 0 ? "" :
            $"{name}: pixel ({mismatch / 4 % vector.Width}, {mismatch / 4 / vector.Width}) channel {mismatch % 4} is {actual[mismatch]}, expected {expected[mismatch]}.");
    }

    [Fact]
    public void InterlacedAndPlainVectorsOfTheSameImageDecodeAlike()
    {
        Assert.Equal(PngDecoder.Read(PngTestVectors.PathOf("g16.png")).Pixels, PngDecoder.Read(PngTestVectors.PathOf("g16i.png")).Pixels);
        Assert.Equal(PngDecoder.Read(PngTestVectors.PathOf("rgba16.png")).Pixels, PngDecoder.Read(PngTestVectors.PathOf("rgba16i.png")).Pixels);
        Assert.Equal(PngDecoder.Read(PngTestVectors.PathOf("rgb8.png")).Pixels, PngDecoder.Read(PngTestVectors.PathOf("f_rgb8.png")).Pixels);
    }

    [Fact]
    public void SixteenBitSamplesRoundToTheNearestLevel()
    {
        // 16-bit grey rows: 0, 128 (rounds down), 129 (rounds up), 32896 (= 128 * 257), 65535.
        ushort[] values = [0, 128, 129, 32896, 65535];
        var raw = new byte[values.Length * 3];
        for (int y = 0; y < values.Length; y++)
        {
            raw[3 * y] = 0;
            raw[3 * y + 1] = (byte)(values[y] >> 8);
            raw[3 * y + 2] = (byte)values[y];
        }
        byte[] png = new PngTestBuilder().Header(1, values.Length, 16, 0).ImageData(raw).End().ToArray();

        DecodedImage image = PngDecoder.Decode(png, "grey16");

        Assert.Equal(new byte[] { 0, 0, 1, 128, 255 }, image.Pixels);
    }

    [Fact]
    public void DecodesFromAStreamPositionedAtThePng()
    {
        byte[] png = File.ReadAllBytes(PngTestVectors.PathOf("p4.png"));
        using var stream = new MemoryStream([1, 2, 3, .. png]);
        stream.Position = 3;

        DecodedImage image = PngDecoder.Decode(stream, "embedded");

        Assert.Equal(PngDecoder.Read(PngTestVectors.PathOf("p4.png")).Pixels, image.Pixels);
    }
}
