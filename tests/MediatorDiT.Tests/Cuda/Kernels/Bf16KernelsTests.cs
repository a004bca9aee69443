using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The bf16 rounding kernel on the CPU accelerator against <see cref="ReferenceBf16.Round"/>, a plain round to nearest
/// (ties to even) by comparing the distances to the two neighbouring bf16 values: ties, values just off a tie, NaN,
/// infinities, zeros, subnormals, the overflow to infinity near float.MaxValue, and random bit patterns.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class Bf16KernelsTests(AcceleratorFixture device)
{
    private static float F(uint bits) => BitConverter.Int32BitsToSingle((int)bits);

    /// <summary>Inputs with the bf16 bits __float2bfloat16_rn gives them.</summary>
    public static TheoryData<uint, ushort> Known => new()
    {
        { 0x3F800000, 0x3F80 }, // 1 is exact
        { 0x3F808000, 0x3F80 }, // 1 + 2^-8: a tie, to the even 1
        { 0x3F818000, 0x3F82 }, // 1 + 3 2^-8: a tie, to the even 1 + 2^-6
        { 0x3F808001, 0x3F81 }, // just above a tie: up
        { 0x3F807FFF, 0x3F80 }, // just below a tie: down
        { 0xBF818000, 0xBF82 }, // negative tie, to even (away from zero here)
        { 0x7F7FFFFF, 0x7F80 }, // float.MaxValue: beyond the largest bf16 plus half an ulp, so infinity
        { 0x7F7F8000, 0x7F80 }, // the tie above the largest bf16 (odd): infinity
        { 0x7F7F7FFF, 0x7F7F }, // just below it: the largest bf16
        { 0xFF7FFFFF, 0xFF80 }, // -float.MaxValue: -infinity
        { 0x7F800000, 0x7F80 }, // +inf
        { 0xFF800000, 0xFF80 }, // -inf
        { 0x7FC00000, 0x7FFF }, // quiet NaN: the canonical NaN
        { 0x7F800001, 0x7FFF }, // signalling NaN with a payload only in the dropped half: still a NaN
        { 0xFFFFFFFF, 0x7FFF }, // negative NaN
        { 0x00000000, 0x0000 }, // +0
        { 0x80000000, 0x8000 }, // -0
        { 0x00000001, 0x0000 }, // the smallest subnormal: to +0
        { 0x00008000, 0x0000 }, // a subnormal tie: to the even 0
        { 0x00018000, 0x0002 }, // a subnormal tie: to the even 2
        { 0x00008001, 0x0001 }, // just above a subnormal tie: the smallest bf16 subnormal
        { 0x807FFFFF, 0x8080 }, // the largest negative subnormal rounds up to -(smallest normal)
    };

    [Theory]
    [MemberData(nameof(Known))]
    public void TheReferenceGivesCudasBits(uint input, ushort expected) => Assert.Equal(expected, ReferenceBf16.Round(F(input)));

    [Fact]
    public void TheKernelEqualsTheReference_OnEdgesAndRandomBitPatterns()
    {
        var inputs = new List<float>();
        foreach (var row in Known) inputs.Add(F((uint)row[0]));
        var random = new Random(71);
        // Random bit patterns (all exponents, NaNs included), and every pattern whose dropped half sits at or next to a tie.
        for (int i = 0; i < 50_000; i++) inputs.Add(F((uint)random.NextInt64(0, 1L << 32)));
        for (int i = 0; i < 2_000; i++)
        {
            uint high = (uint)random.Next(0, 1 << 16) << 16;
            foreach (uint low in new uint[] { 0x7FFF, 0x8000, 0x8001, 0xFFFF })
                inputs.Add(F(high | low));
        }
        var x = inputs.ToArray();
        using var dx = device.Upload(x);
        using var dy = device.Accelerator.Allocate1D<ushort>(x.Length);
        device.Kernels.RoundToBf16(dx.View, dy.View);
        device.Accelerator.Synchronize();
        var actual = dy.GetAsArray1D();
        for (int i = 0; i < x.Length; i++)
        {
            ushort expected = ReferenceBf16.Round(x[i]);
            if (actual[i] != expected)
                Assert.Fail($"input 0x{BitConverter.SingleToInt32Bits(x[i]):X8}: expected 0x{expected:X4}, got 0x{actual[i]:X4}");
        }
    }

    [Fact]
    public void WideningIsExact_AndRoundsBackToItself()
    {
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            float wide = Bf16.Widen((ushort)bits);
            Assert.Equal(bits << 16, BitConverter.SingleToInt32Bits(wide));
            if (!float.IsNaN(wide)) Assert.Equal((ushort)bits, Bf16.Round(wide));
        }
    }
}

/// <summary>A plain round to nearest bf16, ties to even, by distances in double: the twin of <see cref="Bf16.Round"/>.</summary>
internal static class ReferenceBf16
{
    public static ushort Round(float x)
    {
        if (float.IsNaN(x)) return 0x7FFF;
        uint bits = (uint)BitConverter.SingleToInt32Bits(x);
        ushort toward = (ushort)(bits >> 16); // the bf16 value nearer zero (x itself when the dropped half is zero)
        if ((bits & 0xFFFF) == 0) return toward;
        ushort away = (ushort)(toward + 1);    // the next one from zero; 0x7F80 stands for 2^128 in the overflow rule
        double magnitude = Math.Abs((double)x);
        double near = Math.Abs((double)Widen(toward));
        double far = (away & 0x7FFF) == 0x7F80 ? Math.Pow(2, 128) : Math.Abs((double)Widen(away));
        double down = magnitude - near, up = far - magnitude;
        if (down != up) return down < up ? toward : away;
        return (toward & 1) == 0 ? toward : away;
    }

    public static float Widen(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Each value rounded to bf16 and widened back: what a bf16 product reads.</summary>
    public static float[] Rounded(float[] values) => values.Select(v => Widen(Round(v))).ToArray();
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class Bf16KernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : Bf16KernelsTests(device);
