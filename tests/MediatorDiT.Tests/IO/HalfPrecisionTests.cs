using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

public class HalfPrecisionTests
{
    [Theory]
    // exact values keep their top 16 bits
    [InlineData(0x3F800000u, (ushort)0x3F80)] // 1.0
    [InlineData(0xBFC00000u, (ushort)0xBFC0)] // -1.5
    [InlineData(0x80000000u, (ushort)0x8000)] // -0.0
    [InlineData(0x7F800000u, (ushort)0x7F80)] // +inf
    // below, at and above the halfway point between two bf16 values
    [InlineData(0x3F807FFFu, (ushort)0x3F80)]
    [InlineData(0x3F808000u, (ushort)0x3F80)] // tie, 0x3F80 is even: stays
    [InlineData(0x3F808001u, (ushort)0x3F81)]
    [InlineData(0x3F818000u, (ushort)0x3F82)] // tie, 0x3F81 is odd: rounds up to even
    [InlineData(0xBF818000u, (ushort)0xBF82)] // same for negatives
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)] // float max rounds past the bf16 range to inf
    [InlineData(0x00008000u, (ushort)0x0000)] // subnormal tie to even zero
    public void SingleToBFloat16RoundsToNearestEven(uint floatBits, ushort expected)
    {
        float value = BitConverter.UInt32BitsToSingle(floatBits);
        Assert.Equal(expected, HalfPrecision.SingleToBFloat16Bits(value));
    }

    [Theory]
    [InlineData(0x7FC00000u)] // quiet NaN
    [InlineData(0x7F800001u)] // signalling NaN whose payload sits in the dropped bits
    [InlineData(0xFF800001u)]
    public void NaNStaysNaNInBFloat16(uint floatBits)
    {
        ushort bits = HalfPrecision.SingleToBFloat16Bits(BitConverter.UInt32BitsToSingle(floatBits));
        Assert.True(float.IsNaN(HalfPrecision.BFloat16BitsToSingle(bits)));
        Assert.Equal(floatBits >> 31, (uint)bits >> 15); // sign kept
    }

    [Fact]
    public void BFloat16WidensByShifting()
    {
        Assert.Equal(1.0f, HalfPrecision.BFloat16BitsToSingle(0x3F80));
        Assert.Equal(-2.0f, HalfPrecision.BFloat16BitsToSingle(0xC000));
        Assert.Equal(BitConverter.UInt32BitsToSingle(0x40490000), HalfPrecision.BFloat16BitsToSingle(0x4049)); // 3.140625
    }

    [Fact]
    public void BulkBFloat16MatchesScalarConversion()
    {
        float[] values = [0f, 1f, -1.5f, 3.14159265f, 1e-20f, 6.5e4f, -123456.789f, float.PositiveInfinity];
        var bytes = new byte[values.Length * 2];
        HalfPrecision.SingleToBFloat16(values, bytes);
        var back = new float[values.Length];
        HalfPrecision.BFloat16ToSingle(bytes, back);
        for (int i = 0; i < values.Length; i++)
        {
            ushort bits = (ushort)(bytes[2 * i] | bytes[2 * i + 1] << 8); // little-endian
            Assert.Equal(HalfPrecision.SingleToBFloat16Bits(values[i]), bits);
            Assert.Equal(HalfPrecision.BFloat16BitsToSingle(bits), back[i]);
        }
        Assert.Equal(3.140625f, back[3]); // pi to 8 significant bits
    }

    [Theory]
    [InlineData(1.0f, (ushort)0x3C00)]
    [InlineData(-2.0f, (ushort)0xC000)]
    [InlineData(65504f, (ushort)0x7BFF)] // largest half
    [InlineData(65520f, (ushort)0x7C00)] // halfway to the next power: rounds to inf
    [InlineData(1.00048828125f, (ushort)0x3C00)] // 1 + 2^-11, a tie: even 0x3C00 stays
    [InlineData(1.00146484375f, (ushort)0x3C02)] // 1 + 3·2^-11, a tie: rounds up to even 0x3C02
    [InlineData(5.9604645e-8f, (ushort)0x0001)] // smallest subnormal
    public void SingleToHalfRoundsToNearestEven(float value, ushort expected)
    {
        Assert.Equal(expected, HalfPrecision.SingleToHalfBits(value));
        var bytes = new byte[2];
        HalfPrecision.SingleToHalf([value], bytes);
        Assert.Equal(expected, (ushort)(bytes[0] | bytes[1] << 8));
    }

    [Fact]
    public void BulkHalfRoundTripsRepresentableValues()
    {
        float[] values = [0f, 1f, -0.5f, 0.333251953125f, 2048f, -65504f, 6.1035156e-5f];
        var bytes = new byte[values.Length * 2];
        HalfPrecision.SingleToHalf(values, bytes);
        var back = new float[values.Length];
        HalfPrecision.HalfToSingle(bytes, back);
        Assert.Equal(values, back);
    }

    [Fact]
    public void BulkConversionsRejectMismatchedLengths()
    {
        Assert.Throws<ArgumentException>(() => HalfPrecision.HalfToSingle(new byte[6], new float[2]));
        Assert.Throws<ArgumentException>(() => HalfPrecision.SingleToBFloat16(new float[2], new byte[3]));
    }
}
