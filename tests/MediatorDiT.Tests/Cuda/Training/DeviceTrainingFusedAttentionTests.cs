using MediatorDiT.Cuda.Models;
using MediatorDiT.Cuda.Training;
using MediatorDiT.Diffusion;
using MediatorDiT.GpuCheck;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Cuda.Training;

/// <summary>
/// bf16 training steps of a tiny full-attention SiT (depth 2, 2 heads of 8) on a backend given the fused full-attention
/// core (<see cref="FullAttentionCore.Fused"/>: forward, and backward from the saved lse with no P kept) against the
/// same steps on the tiles, on the CPU accelerator shaped as a GPU (32-lane warps, where the kernels run, their
/// instruction emulated): the losses, gradient norms and weights agree to bf16 rounding (the two round P at different
/// points) but not to the bit (the kernels ran), at 16 tokens, where the tiles keep P (and the fused step does not). A whole step on 32-lane
/// warps runs a thread per lane on the CPU, about a minute on two cores; AttentionProductsTests covers the tiles
/// that make S again.
/// </summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public class DeviceTrainingFusedAttentionTests(CudaShapedAcceleratorFixture device, ITestOutputHelper output)
{
    [Fact]
    public void FusedAttentionKernels_TrainAsTheTilesDo_ToBf16Rounding()
    {
        var config = DeviceTrainingBackendTests.Config(16, 2, learnSigma: true);
        var transport = new Transport();
        var (tileNet, tileEma, tileOpt) = DeviceTrainingBackendTests.Run(config, [], 8);
        var (net, ema, opt) = DeviceTrainingBackendTests.Run(config, [], 8);
        using var tiles = new DeviceTrainingBackend(device.Accelerator, transport, DevicePrecision.Bf16);
        using var fused = new DeviceTrainingBackend(device.Accelerator, transport, DevicePrecision.Bf16, fullAttention: FullAttentionCore.Fused);
        Assert.True(fused.Attention.FusesBackward(AttentionKinds.WithMediators(config, null)));
        tiles.Attach(tileNet, tileEma, tileOpt);
        fused.Attach(net, ema, opt);
        for (int step = 0; step < 2; step++)
        {
            var batch = DeviceTrainingBackendTests.Batch(config, 2, 1, 0, 0, 400 + step);
            var expected = tiles.Step(batch);
            var actual = fused.Step(batch);
            double loss = Math.Abs(actual.Loss - expected.Loss) / expected.Loss, norm = Math.Abs(actual.GradNorm - expected.GradNorm) / expected.GradNorm;
            output.WriteLine($"{config.NumTokens} tokens, step {step}: loss {expected.Loss:R} / {actual.Loss:R} ({loss:E2}), gradient norm {expected.GradNorm:R} / {actual.GradNorm:R} ({norm:E2})");
            // Both are bf16 steps: the library's bounds of bf16 against fp32 hold between them a fortiori.
            Assert.True(loss <= 2e-2, $"step {step}: the fused loss is {loss:E2} from the tiles'");
            Assert.True(norm <= 5e-2, $"step {step}: the fused gradient norm is {norm:E2} from the tiles'");
            if (step == 1) Assert.True(loss > 0 || norm > 0, "the fused step gave the tiles' bits: its kernels did not run");
        }
        tiles.SyncToHost();
        fused.SyncToHost();
        double largest = ParityChecks.LargestDifference(tileNet, net);
        output.WriteLine($"largest weight difference after 2 steps: {largest:E2}");
        Assert.True(largest <= 2 * 2 * 1e-3 * 3.17, $"the weights differ by {largest:E2}"); // two AdamW steps of lr 1e-3, both runs
    }
}
