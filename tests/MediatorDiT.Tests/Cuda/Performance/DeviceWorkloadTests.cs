using MediatorDiT.Cuda.Models;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Cuda.Performance;

/// <summary>
/// The timed workload of the bench and the device check with the fused full-attention core
/// (<see cref="DeviceWorkload.FullAttention"/>), on the CPU accelerator shaped as a GPU (32-lane warps, where the fused
/// kernels run): its forward and training step run them and agree with the tiles' workload to bf16 rounding. A tiny
/// full-attention SiT (16 tokens, 2 heads of 16, depth 1, batch 2) with the workload's N(0, 0.02) weights, whose logits
/// are so near 0 that P is near 1/16 (exact in bf16) and the two may agree to the bit; DeviceModelFactoryTests and
/// DeviceTrainingFusedAttentionTests show, at larger weights, that the fused kernels give other bits.
/// </summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public class DeviceWorkloadTests(CudaShapedAcceleratorFixture device, ITestOutputHelper output)
{
    [Fact]
    public void TheFusedCore_RunsInTheForwardAndTheTrainingStep_ToBf16RoundingOfTheTiles()
    {
        var config = new ModelConfig
        {
            InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 1, NumHeads = 2, MlpRatio = 2.0, NumClasses = 10,
            LearnSigma = true, Attention = AttentionKind.Full,
        };
        using var tiles = new DeviceWorkload(device.Accelerator, config, 2, DevicePrecision.Bf16);
        using var fused = new DeviceWorkload(device.Accelerator, config, 2, DevicePrecision.Bf16) { FullAttention = FullAttentionCore.Fused };

        var expected = tiles.Forward().Span.ToArray();
        var actual = fused.Forward().Span.ToArray();
        Assert.True(fused.Attention!.Fuses(config));
        Assert.False(tiles.Attention!.Fuses(config));
        double scale = Math.Max(1, expected.Max(Math.Abs)), largest = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"forward: max |fused - tiles| {largest:E2} of scale {scale:E2}");
        // Both bf16: the library's bound of bf16 against fp32 (docs/GPU.md, "Precision") holds between them a fortiori.
        Assert.True(largest / scale <= 3e-2, $"the fused forward is {largest / scale:E2} from the tiles'");

        // Workloads of their own for the step, whose Attention is then the training network's.
        using var tilesTraining = new DeviceWorkload(device.Accelerator, config, 2, DevicePrecision.Bf16);
        using var fusedTraining = new DeviceWorkload(device.Accelerator, config, 2, DevicePrecision.Bf16) { FullAttention = FullAttentionCore.Fused };
        var tilesStep = tilesTraining.TrainStep();
        var fusedStep = fusedTraining.TrainStep();
        Assert.True(fusedTraining.Attention!.FusesBackward(config));
        Assert.False(fusedTraining.Attention.KeepsProbabilitiesFor(config)); // no P kept: the backward makes S again
        Assert.True(tilesTraining.Attention!.KeepsProbabilitiesFor(config)); // at 16 tokens the tiles keep P
        double loss = Math.Abs(fusedStep.Loss - tilesStep.Loss) / tilesStep.Loss, norm = Math.Abs(fusedStep.GradNorm - tilesStep.GradNorm) / tilesStep.GradNorm;
        output.WriteLine($"training step: loss {tilesStep.Loss:R} / {fusedStep.Loss:R} ({loss:E2}), gradient norm {tilesStep.GradNorm:R} / {fusedStep.GradNorm:R} ({norm:E2})");
        Assert.True(loss <= 2e-2, $"the fused loss is {loss:E2} from the tiles'");
        Assert.True(norm <= 5e-2, $"the fused gradient norm is {norm:E2} from the tiles'");
    }
}
