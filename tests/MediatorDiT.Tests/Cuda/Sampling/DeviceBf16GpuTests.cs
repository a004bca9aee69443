using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Cuda.Training;
using MediatorDiT.Diffusion;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using MediatorDiT.Tests.Cuda.Training;
using MediatorDiT.Tests.Devices;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Cuda.Sampling;

/// <summary>
/// On a machine with an NVIDIA GPU (compute capability 8.0 or later for bf16): cuBLAS's bf16 product against
/// ReferenceGemm of the widened operands, and the bf16 forward and training step against fp32 on the GPU, within the
/// bounds the CPU accelerator's tests justify (<see cref="DeviceBf16Tests"/>, <see cref="DeviceTrainingBf16Tests"/>).
/// </summary>
[Trait("Category", "Gpu")]
public class DeviceBf16GpuTests(ITestOutputHelper output)
{
    private static (Context, CudaAccelerator) Cuda()
    {
        var context = Context.Create(builder => MediatorDiT.Cuda.Kernels.PtxIntrinsics.Register(builder.Cuda()));
        return (context, context.CreateCudaAccelerator(0));
    }

    [GpuFact]
    public void CublasGemmBf16_MatchesReferenceGemmOfTheWidenedOperands()
    {
        var (context, accelerator) = Cuda();
        using (context)
        using (accelerator)
        using (var gemm = CublasGemm.Create(accelerator))
            foreach (var (ta, tb, batch) in new[] { (false, true, 1), (true, false, 3), (false, false, 2) })
            {
                int m = 37, n = 29, k = 41, lda = ta ? m : k, ldb = tb ? k : n;
                var shape = new GemmShape(ta, tb, m, n, k, 0.5f, lda, ldb, 1f, n, (long)m * k, (long)n * k, (long)m * n, batch);
                var a = KernelData.Uniform(m * k * batch, 91, -1f, 1f).Select(ReferenceBf16.Round).ToArray();
                var b = KernelData.Uniform(n * k * batch, 92, -1f, 1f).Select(ReferenceBf16.Round).ToArray();
                var c = KernelData.Uniform(m * n * batch, 93, -1f, 1f);
                var (wideA, wideB) = (a.Select(ReferenceBf16.Widen).ToArray(), b.Select(ReferenceBf16.Widen).ToArray());
                var expected = (float[])c.Clone();
                for (int i = 0; i < batch; i++)
                    ReferenceGemm.Sgemm(ta, tb, m, n, k, 0.5f, wideA.AsSpan(i * m * k), lda, wideB.AsSpan(i * n * k), ldb, 1f, expected.AsSpan(i * m * n), n);
                using var da = accelerator.Allocate1D(a);
                using var db = accelerator.Allocate1D(b);
                using var dc = accelerator.Allocate1D(c);
                gemm.GemmBf16(shape, da.View, db.View, dc.View);
                accelerator.Synchronize();
                var actual = dc.GetAsArray1D();
                // fp32 accumulation in cuBLAS's order (tensor cores may split K): float rounding of 41 terms of magnitude <= 1, as the fp32 test.
                for (int i = 0; i < expected.Length; i++)
                    Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4f * Math.Max(1f, Math.Abs(expected[i])), $"element {i}: {actual[i]:R} vs {expected[i]:R}");
            }
    }

    [GpuFact]
    public void CublasGemmBf16Output_IsTheReferenceRoundedToBf16()
    {
        // C stored in bf16 (CUDA_R_16BF): within one bf16 step (2^-8 relative) of the reference's fp32 result, which cuBLAS's
        // fp32 sums in another order may round to the neighbouring bf16 value; beta reads the bf16 C widened.
        var (context, accelerator) = Cuda();
        using (context)
        using (accelerator)
        using (var gemm = CublasGemm.Create(accelerator))
            foreach (var (ta, tb, batch, beta) in new[] { (false, true, 1, 0f), (true, false, 3, 0f), (false, false, 2, 1f) })
            {
                int m = 37, n = 29, k = 41, lda = ta ? m : k, ldb = tb ? k : n;
                var shape = new GemmShape(ta, tb, m, n, k, 0.5f, lda, ldb, beta, n, (long)m * k, (long)n * k, (long)m * n, batch);
                var a = KernelData.Uniform(m * k * batch, 94, -1f, 1f).Select(ReferenceBf16.Round).ToArray();
                var b = KernelData.Uniform(n * k * batch, 95, -1f, 1f).Select(ReferenceBf16.Round).ToArray();
                var c = KernelData.Uniform(m * n * batch, 96, -1f, 1f).Select(ReferenceBf16.Round).ToArray();
                var (wideA, wideB) = (a.Select(ReferenceBf16.Widen).ToArray(), b.Select(ReferenceBf16.Widen).ToArray());
                var expected = c.Select(ReferenceBf16.Widen).ToArray();
                for (int i = 0; i < batch; i++)
                    ReferenceGemm.Sgemm(ta, tb, m, n, k, 0.5f, wideA.AsSpan(i * m * k), lda, wideB.AsSpan(i * n * k), ldb, beta, expected.AsSpan(i * m * n), n);
                using var da = accelerator.Allocate1D(a);
                using var db = accelerator.Allocate1D(b);
                using var dc = accelerator.Allocate1D(c);
                gemm.GemmBf16(shape, da.View, db.View, dc.View);
                accelerator.Synchronize();
                var actual = dc.GetAsArray1D().Select(ReferenceBf16.Widen).ToArray();
                for (int i = 0; i < expected.Length; i++)
                    Assert.True(Math.Abs(actual[i] - expected[i]) <= Math.Pow(2, -8) * Math.Abs(expected[i]) + 1e-4f, $"element {i}: {actual[i]:R} vs {expected[i]:R}");
            }
    }

    [GpuFact]
    public void Bf16Forward_DiffersFromFp32_WithinTheBound_OnTheGpu()
    {
        var (context, accelerator) = Cuda();
        using (context)
        using (accelerator)
        {
            var model = DeviceModelFunctionTests.RandomModel(ModelFamily.SiT, AttentionKind.Mediator, learnSigma: true, 41);
            var x = new Tensor(2, model.Config.InChannels, model.Config.InputSize, model.Config.InputSize);
            KernelData.Uniform(x.Length, 42, -2f, 2f).CopyTo(x.Span);
            float[] t = [0.3f, 0.8f];
            int[] y = [1, model.Config.NumClasses];
            using var fp32 = new DeviceModelFunction(model, accelerator);
            using var bf16 = new DeviceModelFunction(model, accelerator, precision: DevicePrecision.Bf16);
            var expected = fp32.Forward(x, t, y).Span.ToArray();
            var actual = bf16.Forward(x, t, y).Span.ToArray();
            double scale = Math.Max(1.0, expected.Max(v => Math.Abs((double)v)));
            double largest = expected.Zip(actual, (e, a) => Math.Abs((double)a - e)).Max() / scale;
            output.WriteLine($"GPU, SiT mediator: bf16 vs fp32, largest difference {largest:E2} of the scale {scale:G4}");
            Assert.True(largest > 0 && largest <= 3e-2, $"bf16 differs from fp32 by {largest:E2} of the scale");
        }
    }

    [GpuFact]
    public void ATrainingStepInBf16_StaysWithinTheBoundOfFp32_OnTheGpu()
    {
        var (context, accelerator) = Cuda();
        using (context)
        using (accelerator)
        {
            var config = DeviceTrainingBackendTests.Config(16, 2, learnSigma: true);
            var transport = new Transport();
            var (fpNet, fpEma, fpOpt) = DeviceTrainingBackendTests.Run(config, [4], 5);
            var (bfNet, bfEma, bfOpt) = DeviceTrainingBackendTests.Run(config, [4], 5);
            using var fp32 = new DeviceTrainingBackend(accelerator, transport);
            using var bf16 = new DeviceTrainingBackend(accelerator, transport, DevicePrecision.Bf16);
            fp32.Attach(fpNet, fpEma, fpOpt);
            bf16.Attach(bfNet, bfEma, bfOpt);
            var batch = DeviceTrainingBackendTests.Batch(config, 2, 1, 0, 0, 100);
            var expected = fp32.Step(batch);
            var actual = bf16.Step(batch);
            double loss = Math.Abs(actual.Loss - expected.Loss) / expected.Loss;
            double norm = Math.Abs(actual.GradNorm - expected.GradNorm) / expected.GradNorm;
            output.WriteLine($"GPU: loss relative {loss:E2}, gradient norm relative {norm:E2}");
            Assert.True(loss > 0 && loss <= 2e-2, $"loss {actual.Loss:R} vs fp32 {expected.Loss:R}");
            Assert.True(norm <= 5e-2, $"gradient norm {actual.GradNorm:R} vs fp32 {expected.GradNorm:R}");
        }
    }
}
