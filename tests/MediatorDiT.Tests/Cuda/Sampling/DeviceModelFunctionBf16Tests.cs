using MediatorDiT.Cuda;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Sampling;

/// <summary>
/// A bf16 sampling forward whose kernels write the products' operands themselves and leave out what only a backward
/// reads (LayerNorm's xhat, the attention maps' and output's fp32 values) against the forward that rounds every
/// operand in a pass of its own and writes everything: the same bits, guided, for both attention kinds, with a warp
/// per row (the kernels a card runs), on the CPU accelerator's 4-lane warps and, in the twin, on 32-lane ones.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceModelFunctionBf16Tests(AcceleratorFixture device)
{
    [Theory]
    [InlineData(AttentionKind.Mediator)]
    [InlineData(AttentionKind.Full)]
    public void SamplingForward_GivesTheBitsOfTheForwardThatWritesEverything(AttentionKind attention)
    {
        var model = DeviceModelFunctionTests.RandomModel(ModelFamily.SiT, attention, learnSigma: true, 47);
        var cfg = model.Config;
        var x = new Tensor(2, cfg.InChannels, cfg.InputSize, cfg.InputSize);
        KernelData.Uniform(x.Length, 48, -2f, 2f).CopyTo(x.Span);
        float[] t = [0.4f, 0.4f];
        int[] y = [3, cfg.NumClasses];
        // Guided: the network runs the conditional and the null label's halves in one batch.
        var guidance = new ClassifierFreeGuidance(4f, 3);
        using var everything = Function(model, operandsFromProducers: false, guidance);
        using var skipping = Function(model, operandsFromProducers: true, guidance);
        var expected = everything.Evaluate(x, t, y).Span.ToArray();
        var actual = skipping.Evaluate(x, t, y).Span.ToArray();
        // On a card a contraction may move a value to the neighbouring bf16 one, which the network carries on.
        if (device.SameBitsAsCpu) KernelData.AssertSameBits(expected, actual);
        else AcceleratorFixture.AssertNear(expected, actual, 3e-2, "the sampling forward");
        // And near the fp32 model: bf16's bound for a guided forward (docs/GPU.md, "Precision").
        var fp32 = new GuidedNetworkFunction(model, guidance).Evaluate(x, t, y).Span.ToArray();
        double scale = Math.Max(1, fp32.Max(Math.Abs)), largest = fp32.Zip(expected, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(largest / scale <= 0.21, $"the bf16 forward is {largest / scale:E2} from the fp32 model");
        Assert.True(largest > 0, "the bf16 forward gave the fp32 bits: its operands were not rounded");
    }

    private DeviceModelFunction Function(SiTModel model, bool operandsFromProducers, ClassifierFreeGuidance guidance) =>
        new(model, device.WarpRowKernels, new IlgpuGemm(device.Accelerator), guidance, DevicePrecision.Bf16, operandsFromProducers);
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class DeviceModelFunctionBf16OnCudaWarpsTests(CudaShapedAcceleratorFixture device) : DeviceModelFunctionBf16Tests(device);
