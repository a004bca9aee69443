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

/// <summary>
/// How a kernel stores a float32 result in its output's element type: as it is, or rounded to bf16; and the float32 a
/// stored value stands for (what a GEMM's beta reads back).
/// </summary>
internal interface IResultFormat<T> where T : unmanaged
{
    T From(float value);
    float Widen(T stored);
}

/// <summary>float32 results stored as they are.</summary>
internal readonly struct Fp32Results : IResultFormat<float>
{
    public float From(float value) => value;
    public float Widen(float stored) => stored;
}

/// <summary>Results stored as bf16 (<see cref="Bf16.Round"/>): a bf16 product's operand.</summary>
internal readonly struct Bf16Results : IResultFormat<ushort>
{
    public ushort From(float value) => Bf16.Round(value);
    public float Widen(ushort stored) => Bf16.Widen(stored);
}

/// <summary>The conversion kernel of the bf16 matrix products: float32 operands to bf16 before each product.</summary>
internal static class Bf16Kernels
{
    /// <summary>
    /// y[i] = bf16(x[i]) over n elements, <see cref="ElementsPerThread.Count"/> per thread (thread t takes t, t + T, ..,
    /// T the threads launched), their loads issued before the first store so that they are in flight together.
    /// </summary>
    public static void RoundToBf16(Index1D t, ArrayView<float> x, ArrayView<ushort> y, int n)
    {
        int stride = ElementsPerThread.Threads(n), i0 = t, i1 = i0 + stride, i2 = i1 + stride, i3 = i2 + stride;
        float v0 = i0 < n ? x[i0] : 0f, v1 = i1 < n ? x[i1] : 0f, v2 = i2 < n ? x[i2] : 0f, v3 = i3 < n ? x[i3] : 0f;
        if (i0 < n) y[i0] = Bf16.Round(v0);
        if (i1 < n) y[i1] = Bf16.Round(v1);
        if (i2 < n) y[i2] = Bf16.Round(v2);
        if (i3 < n) y[i3] = Bf16.Round(v3);
    }
}

/// <summary>
/// The mapping of the element kernels that take several elements per thread: on a GPU one 4-byte load per thread
/// keeps too few bytes in flight to fill the memory system (about half its bandwidth at full occupancy), four
/// independent loads per thread keep four times as many. Thread t of T takes elements t, t + T, t + 2T, t + 3T, so a
/// warp's accesses stay contiguous.
/// </summary>
internal static class ElementsPerThread
{
    /// <summary>Elements per thread.</summary>
    public const int Count = 4;

    /// <summary>The threads to launch for n elements, T = ceil(n / Count).</summary>
    public static int Threads(long n) => (int)((n + Count - 1) / Count);
}
