using MediatorDiT.Cuda.Models;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Cuda.Sampling;

/// <summary>
/// A bf16 factory given the fused full-attention core (<see cref="FullAttentionCore.Fused"/>), on the CPU accelerator
/// shaped as a GPU (32-lane warps, where the fused kernels run, their instruction emulated): its full-attention
/// networks run the fused kernels and agree with the tiles' networks to bf16 rounding but not to the bit (the two round
/// P at different points); its mediator networks give the tiles' bits (the setting is full attention's only).
/// </summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public class DeviceModelFactoryTests(CudaShapedAcceleratorFixture device, ITestOutputHelper output)
{
    [Fact]
    public void TheFusedCore_RunsInFullAttentionNetworks_ToBf16RoundingOfTheTiles()
    {
        var full = TinyDeviceModels.Model(ModelFamily.SiT, AttentionKind.Full, mediators: 0, seed: 71);
        var mediator = TinyDeviceModels.Model(ModelFamily.SiT, AttentionKind.Mediator, mediators: 4, seed: 72);
        using var tiles = new DeviceModelFactory(device.Accelerator, precision: DevicePrecision.Bf16);
        using var fused = new DeviceModelFactory(device.Accelerator, precision: DevicePrecision.Bf16, fullAttention: FullAttentionCore.Fused);
        Assert.Equal(FullAttentionCore.Tiles, tiles.FullAttention);
        Assert.Equal(FullAttentionCore.Fused, fused.Network(full).FullAttention);
        Assert.True(fused.Network(full).Attention.Fuses(full.Config));
        Assert.False(tiles.Network(full).Attention.Fuses(full.Config));

        var x = new Tensor(2, 4, 8, 8);
        new RandomSource(73).FillGaussian(x.Span);
        float[] t = [0.3f, 0.8f];
        int[] y = [1, 4];
        var expected = tiles.Network(full).Forward(x, t, y).Span.ToArray();
        var actual = fused.Network(full).Forward(x, t, y).Span.ToArray();
        double scale = Math.Max(1, expected.Max(Math.Abs)), largest = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"full attention, fused against tiles: max |difference| {largest:E2} of scale {scale:E2}");
        // Both are bf16 forwards: the library's bound of bf16 against fp32 (docs/GPU.md, "Precision") holds between them a fortiori.
        Assert.True(largest / scale <= 3e-2, $"the fused forward is {largest / scale:E2} from the tiles'");
        Assert.True(largest > 0, "the fused forward gave the tiles' bits: its kernels did not run");

        KernelData.AssertSameBits(tiles.Network(mediator).Forward(x, t, y).Span.ToArray(), fused.Network(mediator).Forward(x, t, y).Span.ToArray());
    }
}
