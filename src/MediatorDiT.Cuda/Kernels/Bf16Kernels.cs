using System.Runtime.CompilerServices;
using ILGPU;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// bfloat16 (1 sign, 8 exponent, 7 mantissa bits: the upper half of a float32) as the device stores it, in ushorts.
/// <see cref="Round"/> is CUDA's __float2bfloat16_rn (round to nearest, ties to even; every NaN to the quiet NaN
/// 0x7FFF; subnormals kept; values at or beyond the largest bf16 plus half an ulp become infinity) written with
/// integer operations, so every accelerator gives the same bits; <see cref="Widen"/> is exact.
/// </summary>
internal static class Bf16
{
    /// <summary>The bf16 bits nearest <paramref name="x"/>, ties to the even one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Round(float x)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(x);
        if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFF;
        // Adding 0x7FFF rounds a dropped half below 0x8000 down and above it up; the kept half's lowest bit breaks the tie to even.
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    /// <summary>The float32 a bf16 value stands for (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);
}

/// <summary>The conversion kernel of the bf16 matrix products: float32 operands to bf16 before each product.</summary>
internal static class Bf16Kernels
{
    /// <summary>y[i] = bf16(x[i]), one thread per element.</summary>
    public static void RoundToBf16(Index1D i, ArrayView<float> x, ArrayView<ushort> y) => y[i] = Bf16.Round(x[i]);
}
