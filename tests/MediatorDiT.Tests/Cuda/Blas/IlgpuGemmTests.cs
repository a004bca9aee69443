using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Blas;

/// <summary>
/// The ILGPU SGEMM kernels on the CPU accelerator: the tiled kernel equals its plain twin bit for bit, and both
/// equal the CPU's ReferenceGemm (double sums) to float rounding, over transposes, odd sizes, leading dimensions,
/// alpha/beta and strided batches. The bf16 kernels likewise, over the same cases with bf16 operands: tiled = plain,
/// and both = the float32 kernel over the operands widened on the host, bit for bit (widening is exact and the sums
/// run in the same order), and = ReferenceGemm of the widened operands to float rounding.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class IlgpuGemmTests(AcceleratorFixture device)
{
    public static TheoryData<bool, bool, int, int, int, float, float, int> Cases => new()
    {
        { false, false, 7, 5, 9, 1f, 0f, 1 },
        { false, true, 13, 6, 17, 1f, 1f, 1 },   // Linear's form, accumulating onto bias rows
        { true, false, 5, 11, 3, 0.5f, -2f, 3 }, // strided batch
        { true, true, 9, 4, 21, -1.5f, 0.25f, 2 },
        { false, false, 1, 1, 1, 2f, 0f, 1 },
        { false, true, 3, 19, 0, 1f, 0.5f, 2 }, // k = 0: C = beta C
    };

    /// <summary>The case's shape with leading dimensions wider than the rows and gaps between the items, so strides and padding are exercised.</summary>
    private static GemmShape Padded(bool transA, bool transB, int m, int n, int k, float alpha, float beta, int batch)
    {
        int lda = (transA ? m : k) + 2, ldb = (transB ? k : n) + 1, ldc = n + 3;
        int rowsA = transA ? k : m, rowsB = transB ? n : k;
        return new GemmShape(transA, transB, m, n, k, alpha, lda, ldb, beta, ldc, (long)rowsA * lda + 5, (long)rowsB * ldb + 1, (long)m * ldc + 2, batch);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TiledEqualsPlainBitForBit_AndBothMatchReferenceGemm(bool transA, bool transB, int m, int n, int k, float alpha, float beta, int batch)
    {
        var shape = Padded(transA, transB, m, n, k, alpha, beta, batch);
        var (lda, ldb, ldc, strideA, strideB, strideC) = (shape.Lda, shape.Ldb, shape.Ldc, shape.StrideA, shape.StrideB, shape.StrideC);
        var a = KernelData.Uniform((int)(strideA * batch), 31, -1f, 1f);
        var b = KernelData.Uniform((int)(strideB * batch), 32, -1f, 1f);
        var c0 = KernelData.Uniform((int)(strideC * batch), 33, -1f, 1f);

        var expected = (float[])c0.Clone();
        for (int i = 0; i < batch; i++)
            ReferenceGemm.Sgemm(transA, transB, m, n, k, alpha, a.AsSpan((int)(i * strideA)), lda, b.AsSpan((int)(i * strideB)), ldb, beta,
                expected.AsSpan((int)(i * strideC)), ldc);

        var tiled = Run(new IlgpuGemm(device.Accelerator, plain: false), shape, a, b, c0);
        var plain = Run(new IlgpuGemm(device.Accelerator, plain: true), shape, a, b, c0);
        device.AssertSameBits(plain, tiled);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(tiled[i] - expected[i]) <= 1e-5f * Math.Max(1f, Math.Abs(expected[i]))))
                Assert.Fail($"element {i}: expected {expected[i]:R}, got {tiled[i]:R}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bf16Kernels_EqualTheFloatKernelOnTheWidenedOperands(bool transA, bool transB, int m, int n, int k, float alpha, float beta, int batch)
    {
        var shape = Padded(transA, transB, m, n, k, alpha, beta, batch);
        var (lda, ldb, ldc, strideA, strideB, strideC) = (shape.Lda, shape.Ldb, shape.Ldc, shape.StrideA, shape.StrideB, shape.StrideC);
        var a = KernelData.Uniform((int)(strideA * batch), 34, -1f, 1f).Select(ReferenceBf16.Round).ToArray();
        var b = KernelData.Uniform((int)(strideB * batch), 35, -1f, 1f).Select(ReferenceBf16.Round).ToArray();
        var wideA = a.Select(ReferenceBf16.Widen).ToArray();
        var wideB = b.Select(ReferenceBf16.Widen).ToArray();
        var c0 = KernelData.Uniform((int)(strideC * batch), 36, -1f, 1f);

        var expected = (float[])c0.Clone();
        for (int i = 0; i < batch; i++)
            ReferenceGemm.Sgemm(transA, transB, m, n, k, alpha, wideA.AsSpan((int)(i * strideA)), lda, wideB.AsSpan((int)(i * strideB)), ldb, beta,
                expected.AsSpan((int)(i * strideC)), ldc);

        var tiled = RunBf16(new IlgpuGemm(device.Accelerator, plain: false), shape, a, b, c0);
        var plain = RunBf16(new IlgpuGemm(device.Accelerator, plain: true), shape, a, b, c0);
        device.AssertSameBits(plain, tiled);
        device.AssertSameBits(Run(new IlgpuGemm(device.Accelerator, plain: true), shape, wideA, wideB, c0), plain);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(plain[i] - expected[i]) <= 1e-5f * Math.Max(1f, Math.Abs(expected[i]))))
                Assert.Fail($"element {i}: expected {expected[i]:R}, got {plain[i]:R}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bf16Output_IsTheFloatOutputRoundedOnce(bool transA, bool transB, int m, int n, int k, float alpha, float beta, int batch)
    {
        // C in bf16: each element's float32 result (beta reading C widened) rounded to bf16 once, tiled = plain; the
        // padding between C's rows and items is not written.
        var shape = Padded(transA, transB, m, n, k, alpha, beta, batch);
        var (lda, ldb, ldc, strideA, strideB, strideC) = (shape.Lda, shape.Ldb, shape.Ldc, shape.StrideA, shape.StrideB, shape.StrideC);
        var a = KernelData.Uniform((int)(strideA * batch), 37, -1f, 1f).Select(ReferenceBf16.Round).ToArray();
        var b = KernelData.Uniform((int)(strideB * batch), 38, -1f, 1f).Select(ReferenceBf16.Round).ToArray();
        var c16 = KernelData.Uniform((int)(strideC * batch), 39, -1f, 1f).Select(ReferenceBf16.Round).ToArray();
        var wide = RunBf16(new IlgpuGemm(device.Accelerator, plain: true), shape, a, b, c16.Select(ReferenceBf16.Widen).ToArray());
        var expected = new ushort[c16.Length];
        for (int i = 0; i < expected.Length; i++)
        {
            long item = i / strideC, rest = i % strideC, row = rest / ldc, col = rest % ldc;
            bool written = item < batch && row < m && col < n;
            expected[i] = written ? ReferenceBf16.Round(wide[i]) : c16[i];
        }
        var plain = RunBf16Output(new IlgpuGemm(device.Accelerator, plain: true), shape, a, b, c16);
        var tiled = RunBf16Output(new IlgpuGemm(device.Accelerator, plain: false), shape, a, b, c16);
        device.AssertSameHalves(expected, plain, "plain bf16 C");
        device.AssertSameHalves(expected, tiled, "tiled bf16 C");
        Assert.Contains(expected, v => v != 0);
    }

    [Fact]
    public void TheTileFitsTheAcceleratorsGroups()
    {
        var gemm = new IlgpuGemm(device.Accelerator, plain: false);
        Assert.True(gemm.Tile >= 2 && gemm.Tile * gemm.Tile <= device.Accelerator.MaxNumThreadsPerGroup);
    }

    [Fact]
    public void ATooShortViewOrLeadingDimensionIsRefused()
    {
        using var small = device.Accelerator.Allocate1D<float>(10);
        var gemm = new IlgpuGemm(device.Accelerator);
        var tooBig = GemmShape.Single(false, false, 4, 4, 4, 1f, 4, 4, 0f, 4);
        Assert.Contains("too short", Assert.Throws<ArgumentException>(() => gemm.Sgemm(tooBig, small.View, small.View, small.View)).Message);
        var badLd = GemmShape.Single(false, true, 2, 2, 3, 1f, 2, 3, 0f, 2);
        Assert.Contains("lda 2", Assert.Throws<ArgumentException>(() => gemm.Sgemm(badLd, small.View, small.View, small.View)).Message);
    }

    private float[] Run(IlgpuGemm gemm, GemmShape shape, float[] a, float[] b, float[] c0)
    {
        using var da = device.Upload(a);
        using var db = device.Upload(b);
        using var dc = device.Upload(c0);
        gemm.Sgemm(shape, da.View, db.View, dc.View);
        return device.Download(dc);
    }

    private float[] RunBf16(IlgpuGemm gemm, GemmShape shape, ushort[] a, ushort[] b, float[] c0)
    {
        using var da = device.Accelerator.Allocate1D(a);
        using var db = device.Accelerator.Allocate1D(b);
        using var dc = device.Upload(c0);
        gemm.GemmBf16(shape, da.View, db.View, dc.View);
        return device.Download(dc);
    }

    private ushort[] RunBf16Output(IlgpuGemm gemm, GemmShape shape, ushort[] a, ushort[] b, ushort[] c0)
    {
        using var da = device.Accelerator.Allocate1D(a);
        using var db = device.Accelerator.Allocate1D(b);
        using var dc = device.Accelerator.Allocate1D(c0);
        gemm.GemmBf16(shape, da.View, db.View, dc.View);
        device.Accelerator.Synchronize();
        return dc.GetAsArray1D();
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class IlgpuGemmOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : IlgpuGemmTests(device);
