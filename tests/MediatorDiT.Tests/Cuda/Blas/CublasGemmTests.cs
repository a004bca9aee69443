using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using MediatorDiT.Tests.Cuda.Sampling;
using MediatorDiT.Tests.Devices;

namespace MediatorDiT.Tests.Cuda.Blas;

/// <summary>
/// What of the cuBLAS binding runs without a GPU: the row-major to column-major mapping, executed here by a plain
/// column-major product with cuBLAS's argument meanings, must give ReferenceGemm's row-major result; and the
/// status sentences.
/// </summary>
public class CublasCallTests
{
    [Theory]
    [InlineData(false, false, 4, 3, 5, 1)]
    [InlineData(false, true, 3, 6, 2, 2)]
    [InlineData(true, false, 5, 2, 4, 1)]
    [InlineData(true, true, 2, 5, 3, 3)]
    public void TheColumnMajorCall_ComputesTheRowMajorProduct(bool transA, bool transB, int m, int n, int k, int batch)
    {
        int lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n + 1;
        long strideA = (long)(transA ? k : m) * lda, strideB = (long)(transB ? n : k) * ldb, strideC = (long)m * ldc;
        var shape = new GemmShape(transA, transB, m, n, k, 1.5f, lda, ldb, 0.5f, ldc, strideA, strideB, strideC, batch);
        var a = KernelData.Uniform((int)(strideA * batch), 71);
        var b = KernelData.Uniform((int)(strideB * batch), 72);
        var c = KernelData.Uniform((int)(strideC * batch), 73);
        var expected = (float[])c.Clone();
        for (int i = 0; i < batch; i++)
            ReferenceGemm.Sgemm(transA, transB, m, n, k, shape.Alpha, a.AsSpan((int)(i * strideA)), lda, b.AsSpan((int)(i * strideB)), ldb, shape.Beta,
                expected.AsSpan((int)(i * strideC)), ldc);

        var call = CublasCall.For(shape);
        Assert.Equal((n, m, k), (call.M, call.N, call.K));
        // cuBLAS's meaning: column-major C (M, N) = alpha op(first) op(second) + beta C, element (i, j) at i + j ld.
        for (int item = 0; item < call.Batch; item++)
        for (int i = 0; i < call.M; i++)
        for (int j = 0; j < call.N; j++)
        {
            double sum = 0;
            for (int p = 0; p < call.K; p++)
            {
                long f = item * call.StrideFirst + (call.OpFirst == CublasCall.OpN ? i + (long)p * call.LdFirst : p + (long)i * call.LdFirst);
                long s = item * call.StrideSecond + (call.OpSecond == CublasCall.OpN ? p + (long)j * call.LdSecond : j + (long)p * call.LdSecond);
                sum += (double)b[f] * a[s];
            }
            long ci = item * call.StrideC + i + (long)j * call.Ldc;
            c[ci] = (float)(shape.Alpha * sum) + shape.Beta * c[ci];
        }
        KernelData.AssertSameBits(expected, c);
    }

    [Theory]
    [InlineData(7, 0L)]
    [InlineData(8, 0L)]
    [InlineData(9, 32L << 20)]
    [InlineData(10, 32L << 20)]
    public void HopperAndLaterGetTheRecommended32MiBWorkspace_EarlierCardsCublassOwnPool(int major, long bytes) =>
        Assert.Equal(bytes, CublasGemm.RecommendedWorkspaceBytes(major));

    [Fact]
    public void StatusCodesBecomeSentences()
    {
        Assert.Equal("cuBLAS cublasGemmEx failed: the GPU lacks a feature the call needs (bf16 products need compute capability 8.0 or later) (status 8).",
            CublasErrors.Describe("cublasGemmEx", 8));
        Assert.Contains("an argument was out of range", CublasErrors.Describe("cublasSgemm_v2", 7));
        Assert.Contains("an unknown status was returned (status 99)", CublasErrors.Describe("cublasCreate_v2", 99));
        var e = Assert.Throws<MediatorDiTException>(() => CublasErrors.Check(3, "cublasCreate_v2"));
        Assert.Equal("cuBLAS cublasCreate_v2 failed: device memory could not be allocated (status 3).", e.Message);
        CublasErrors.Check(0, "cublasSgemm_v2"); // success passes
    }
}

/// <summary>On a machine with an NVIDIA GPU: cuBLAS and the device forward on ILGPU's CUDA accelerator against the CPU.</summary>
[Trait("Category", "Gpu")]
public class CublasGemmGpuTests
{
    private static (Context, CudaAccelerator) Cuda()
    {
        var context = Context.Create(builder => MediatorDiT.Cuda.Kernels.PtxIntrinsics.Register(builder.Cuda()));
        return (context, context.CreateCudaAccelerator(0));
    }

    [GpuFact]
    public void SgemmAndStridedBatched_MatchReferenceGemm()
    {
        var (context, accelerator) = Cuda();
        using (context)
        using (accelerator)
        using (var gemm = CublasGemm.Create(accelerator))
            foreach (var (ta, tb, batch) in new[] { (false, true, 1), (true, false, 3), (true, true, 2), (false, false, 1) })
            {
                int m = 37, n = 29, k = 41, lda = ta ? m : k, ldb = tb ? k : n;
                var shape = new GemmShape(ta, tb, m, n, k, 0.5f, lda, ldb, 1f, n, (long)m * k, (long)n * k, (long)m * n, batch);
                var a = KernelData.Uniform(m * k * batch, 81, -1f, 1f);
                var b = KernelData.Uniform(n * k * batch, 82, -1f, 1f);
                var c = KernelData.Uniform(m * n * batch, 83, -1f, 1f);
                var expected = (float[])c.Clone();
                for (int i = 0; i < batch; i++)
                    ReferenceGemm.Sgemm(ta, tb, m, n, k, 0.5f, a.AsSpan(i * m * k), lda, b.AsSpan(i * n * k), ldb, 1f, expected.AsSpan(i * m * n), n);
                using var da = accelerator.Allocate1D(a);
                using var db = accelerator.Allocate1D(b);
                using var dc = accelerator.Allocate1D(c);
                gemm.Sgemm(shape, da.View, db.View, dc.View);
                accelerator.Synchronize();
                KernelData.AssertRelative(expected, dc.GetAsArray1D(), 1e-4);
            }
    }

    [GpuFact]
    public void TheDeviceModelFunction_MatchesTheCpuModelOnTheGpu()
    {
        var (context, accelerator) = Cuda();
        using (context)
        using (accelerator)
        {
            var model = DeviceModelFunctionTests.RandomModel(ModelFamily.SiT, AttentionKind.Mediator, learnSigma: true, 84);
            var x = new Tensor(2, model.Config.InChannels, model.Config.InputSize, model.Config.InputSize);
            KernelData.Uniform(x.Length, 85, -2f, 2f).CopyTo(x.Span);
            float[] t = [0.25f, 0.75f];
            int[] y = [1, 3];
            var expected = model.Forward(x, t, y);
            using var function = new DeviceModelFunction(model, accelerator);
            var actual = function.Evaluate(x, t, y);
            float scale = Math.Max(1f, expected.Span.ToArray().Max(Math.Abs));
            for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(actual.Span[i] - expected.Span[i]) <= 1e-4f * scale, $"element {i}");
        }
    }
}
