using ILGPU.Runtime;
using MediatorDiT.Cuda.Training;
using MediatorDiT.Diffusion;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Cuda.Training;

/// <summary>
/// Training steps with bf16 matrix products against fp32 ones on the CPU accelerator, from the same weights and
/// batches (a tiny mediator SiT, depth 2): the losses, gradient norms and updated weights differ (the bf16 path ran),
/// by at most the bounds below.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceTrainingBf16Tests(CpuAcceleratorFixture device, ITestOutputHelper output)
{
    /// <summary>
    /// bf16 keeps 8 significant bits: each rounded operand is within 2^-9 relative, each product term within about
    /// 2^-8 = 3.9e-3, and a sum of many terms of both signs within that of its magnitude. The prediction's error is a
    /// few such layers' (measured: see <see cref="Sampling.DeviceBf16Tests"/>); the loss, a mean of squared residuals
    /// whose prediction part is about half the residual, moves by about twice that relative: 2e-2 leaves room for
    /// several products' worst cases. The gradient norm passes through every backward product as well: 5e-2.
    /// </summary>
    private const double LossBound = 2e-2, NormBound = 5e-2;

    [Fact]
    public void TwoStepsInBf16_StayWithinTheBoundsOfFp32()
    {
        var config = DeviceTrainingBackendTests.Config(16, 2, learnSigma: true);
        var transport = new Transport();
        var (fpNet, fpEma, fpOpt) = DeviceTrainingBackendTests.Run(config, [4], 5);
        var (bfNet, bfEma, bfOpt) = DeviceTrainingBackendTests.Run(config, [4], 5);
        using var fp32 = new DeviceTrainingBackend(device.Accelerator, transport);
        using var bf16 = new DeviceTrainingBackend(device.Accelerator, transport, DevicePrecision.Bf16);
        Assert.Equal(DevicePrecision.Fp32, fp32.Precision);
        Assert.Equal(DevicePrecision.Bf16, bf16.Precision);
        fp32.Attach(fpNet, fpEma, fpOpt);
        bf16.Attach(bfNet, bfEma, bfOpt);
        for (int step = 0; step < 2; step++)
        {
            var batch = DeviceTrainingBackendTests.Batch(config, 2, 1, 0, 0, 100 + step);
            var expected = fp32.Step(batch);
            var actual = bf16.Step(batch);
            double loss = Math.Abs(actual.Loss - expected.Loss) / expected.Loss;
            double norm = Math.Abs(actual.GradNorm - expected.GradNorm) / expected.GradNorm;
            output.WriteLine($"step {step}: loss fp32 {expected.Loss:R} bf16 {actual.Loss:R} (relative {loss:E2}); " +
                $"gradient norm fp32 {expected.GradNorm:R} bf16 {actual.GradNorm:R} (relative {norm:E2})");
            Assert.True(loss > 0, $"step {step}: the bf16 loss equals the fp32 one bit for bit, so the bf16 products did not run");
            Assert.True(loss <= LossBound, $"step {step}: bf16 loss {actual.Loss:R} is {loss:E2} from fp32's {expected.Loss:R}");
            Assert.True(norm <= NormBound, $"step {step}: bf16 gradient norm {actual.GradNorm:R} is {norm:E2} from fp32's {expected.GradNorm:R}");
        }
        // The master weights stay fp32: after two AdamW steps of lr 1e-3 they differ from the fp32 run's by at most
        // the two steps' size (AdamW's step is about lr whatever the gradient), and not everywhere by nothing.
        fp32.SyncToHost();
        bf16.SyncToHost();
        double largest = 0;
        for (int i = 0; i < fpNet.Parameters.Count; i++)
        {
            var e = fpNet.Parameters[i].Value.Span;
            var a = bfNet.Parameters[i].Value.Span;
            for (int j = 0; j < e.Length; j++) largest = Math.Max(largest, Math.Abs((double)a[j] - e[j]));
        }
        output.WriteLine($"largest weight difference after 2 steps: {largest:E2}");
        Assert.True(largest > 0 && largest <= 2 * 2 * 1e-3 * 3.17, $"the weights differ by {largest:E2}");
    }
}
