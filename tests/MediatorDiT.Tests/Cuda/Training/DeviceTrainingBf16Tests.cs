using ILGPU.Runtime;
using MediatorDiT.Cuda.Training;
using MediatorDiT.Diffusion;
using MediatorDiT.GpuCheck;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Cuda.Training;

/// <summary>
/// Training steps with bf16 matrix products against fp32 ones on the CPU accelerator, from the same weights and
/// batches (tiny SiTs of depth 2: mediator attention, full attention with and without its P kept): the losses,
/// gradient norms and updated weights differ (the bf16 path ran), by at most the bounds below. The default bf16 step, whose kernels write the products' bf16 operands, gives the bits of
/// the reference that rounds each operand in a pass of its own.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceTrainingBf16Tests(AcceleratorFixture device, ITestOutputHelper output)
{
    /// <summary>
    /// bf16 keeps 8 significant bits: each rounded operand is within 2^-9 relative, each product term within about
    /// 2^-8 = 3.9e-3, and a sum of many terms of both signs within that of its magnitude. The prediction's error is a
    /// few such layers' (measured: see <see cref="Sampling.DeviceBf16Tests"/>); the loss, a mean of squared residuals
    /// whose prediction part is about half the residual, moves by about twice that relative: 2e-2 leaves room for
    /// several products' worst cases. The gradient norm passes through every backward product as well: 5e-2.
    /// </summary>
    private const double LossBound = 2e-2, NormBound = 5e-2;

    /// <summary>Mediator attention; full attention at 16 tokens (P kept for the backward) and at 64 (S made again).</summary>
    public static TheoryData<int[], int> Networks => new() { { [4], 8 }, { [], 8 }, { [], 16 } };

    [Theory]
    [MemberData(nameof(Networks))]
    public void TwoStepsInBf16_StayWithinTheBoundsOfFp32(int[] mediators, int inputSize)
    {
        var config = DeviceTrainingBackendTests.Config(16, 2, learnSigma: true) with { InputSize = inputSize };
        var transport = new Transport();
        var (fpNet, fpEma, fpOpt) = DeviceTrainingBackendTests.Run(config, mediators, 5);
        var (bfNet, bfEma, bfOpt) = DeviceTrainingBackendTests.Run(config, mediators, 5);
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
        double largest = ParityChecks.LargestDifference(fpNet, bfNet);
        output.WriteLine($"largest weight difference after 2 steps: {largest:E2}");
        Assert.True(largest > 0 && largest <= 2 * 2 * 1e-3 * 3.17, $"the weights differ by {largest:E2}");
    }

    [Theory]
    [InlineData(new int[0], 8)] // full attention, P kept
    [InlineData(new int[0], 16)] // full attention at 64 tokens: P not kept, S made again
    [InlineData(new[] { 4 }, 8)]
    [InlineData(new[] { 1, 4 }, 8)] // a shared-weight ladder: members take turns
    public void Bf16OperandsFromTheirProducers_GiveTheSeparateRoundingsBits(int[] mediators, int inputSize)
    {
        var config = DeviceTrainingBackendTests.Config(16, 2, learnSigma: true) with { InputSize = inputSize };
        var transport = new Transport();
        var (refNet, refEma, refOpt) = DeviceTrainingBackendTests.Run(config, mediators, 6);
        var (net, ema, opt) = DeviceTrainingBackendTests.Run(config, mediators, 6);
        using var reference = new DeviceTrainingBackend(device.Accelerator, transport, DevicePrecision.Bf16, null, null, operandsFromProducers: false);
        using var fused = new DeviceTrainingBackend(device.Accelerator, transport, DevicePrecision.Bf16);
        reference.Attach(refNet, refEma, refOpt);
        fused.Attach(net, ema, opt);
        for (int step = 0; step < 3; step++)
        {
            var batch = DeviceTrainingBackendTests.Batch(config, 2, 1, step % Math.Max(1, mediators.Length), 0, 200 + step);
            var expected = reference.Step(batch);
            var actual = fused.Step(batch);
            Assert.Equal(expected.Loss, actual.Loss);
            Assert.Equal(expected.GradNorm, actual.GradNorm);
        }
        reference.SyncToHost();
        fused.SyncToHost();
        for (int i = 0; i < refNet.Parameters.Count; i++)
        {
            KernelData.AssertSameBits(refNet.Parameters[i].Value.Span.ToArray(), net.Parameters[i].Value.Span.ToArray());
            KernelData.AssertSameBits(refEma.Parameters[i].Value.Span.ToArray(), ema.Parameters[i].Value.Span.ToArray());
        }
    }
}
