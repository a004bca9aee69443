using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace MediatorDiT.IO;

/// <summary>
/// Conversions between float32 and the two 16-bit storage formats: IEEE half (F16, via
/// <see cref="Half"/>) and bfloat16 (BF16: the top 16 bits of a float32). Bulk forms read and write
/// little-endian bytes, the byte order of safetensors and PyTorch files.
/// </summary>
internal static class HalfPrecision
{
    /// <summary>bf16 is the high half of a float32, so widening is exact: a 16-bit shift.</summary>
    public static float BFloat16BitsToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>
    /// Rounds to the nearest bf16, ties to even (as c10::BFloat16 does); NaN stays a quiet NaN with
    /// its sign, and finite values past the bf16 range round to infinity.
    /// </summary>
    public static ushort SingleToBFloat16Bits(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x0040);
        uint lowestKeptBit = (bits >> 16) & 1;
        return (ushort)((bits + 0x7FFFu + lowestKeptBit) >> 16);
    }

    public static float HalfBitsToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>Rounds to the nearest IEEE half, ties to even (the <see cref="Half"/> conversion).</summary>
    public static ushort SingleToHalfBits(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary>Widens little-endian bf16 bytes (2 per element) into <paramref name="destination"/>.</summary>
    public static void BFloat16ToSingle(ReadOnlySpan<byte> source, Span<float> destination)
    {
        CheckLengths(source.Length, destination.Length);
        Span<uint> wide = MemoryMarshal.Cast<float, uint>(destination);
        for (int i = 0; i < wide.Length; i++)
            wide[i] = (uint)BinaryPrimitives.ReadUInt16LittleEndian(source.Slice(2 * i, 2)) << 16;
    }

    /// <summary>Rounds each float to bf16 and writes it as 2 little-endian bytes.</summary>
    public static void SingleToBFloat16(ReadOnlySpan<float> source, Span<byte> destination)
    {
        CheckLengths(destination.Length, source.Length);
        for (int i = 0; i < source.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(destination.Slice(2 * i, 2), SingleToBFloat16Bits(source[i]));
    }

    /// <summary>Widens little-endian IEEE half bytes (2 per element) into <paramref name="destination"/>.</summary>
    public static void HalfToSingle(ReadOnlySpan<byte> source, Span<float> destination)
    {
        CheckLengths(source.Length, destination.Length);
        if (BitConverter.IsLittleEndian)
        {
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
            return;
        }
        for (int i = 0; i < destination.Length; i++)
            destination[i] = HalfBitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source.Slice(2 * i, 2)));
    }

    /// <summary>Rounds each float to IEEE half and writes it as 2 little-endian bytes.</summary>
    public static void SingleToHalf(ReadOnlySpan<float> source, Span<byte> destination)
    {
        CheckLengths(destination.Length, source.Length);
        if (BitConverter.IsLittleEndian)
        {
            TensorPrimitives.ConvertToHalf(source, MemoryMarshal.Cast<byte, Half>(destination));
            return;
        }
        for (int i = 0; i < source.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(destination.Slice(2 * i, 2), SingleToHalfBits(source[i]));
    }

    private static void CheckLengths(int halfBytes, int floats)
    {
        if (halfBytes != 2 * (long)floats)
            throw new ArgumentException($"{halfBytes} bytes of 16-bit values do not match {floats} floats.");
    }
}
