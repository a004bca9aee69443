using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Performance;

/// <summary>
/// The device's square matrix-product rate, the yardstick of the device bench as SGEMM 1024^3 is the CPU's: the same
/// product call the linear layers make (cuBLAS on a GPU: cublasSgemm in fp32, cublasGemmEx with bf16 inputs and fp32
/// accumulation in bf16; the ILGPU kernels elsewhere).
/// </summary>
internal static class DeviceGemmRate
{
    /// <summary>FLOP/s of C (n, n) = A (n, n) B (n, n) at <paramref name="precision"/>, the median of <paramref name="repeats"/> timed products.</summary>
    public static double Measure(Accelerator accelerator, int n, DevicePrecision precision, int warmups, int repeats, CancellationToken cancel)
    {
        using var gemm = DeviceGemms.For(accelerator);
        var shape = GemmShape.Single(false, false, n, n, n, 1f, n, n, 0f, n);
        long elements = (long)n * n;
        using var c = accelerator.Allocate1D<float>(elements);
        double[] times;
        if (precision == DevicePrecision.Bf16)
        {
            // 1.0 in bf16 (0x3F80): the values do not change the speed.
            var one = Enumerable.Repeat((ushort)0x3F80, (int)elements).ToArray();
            using var a = accelerator.Allocate1D(one);
            using var b = accelerator.Allocate1D(one);
            times = DeviceTiming.Time(accelerator, warmups, repeats, _ => gemm.GemmBf16(shape, a.View, b.View, c.View), cancel);
        }
        else
        {
            var values = new float[elements];
            new RandomSource(5).FillGaussian(values);
            using var a = accelerator.Allocate1D(values);
            using var b = accelerator.Allocate1D(values);
            times = DeviceTiming.Time(accelerator, warmups, repeats, _ => gemm.Sgemm(shape, a.View, b.View, c.View), cancel);
        }
        return 2.0 * n * n * n / DeviceTiming.Median(times);
    }
}
