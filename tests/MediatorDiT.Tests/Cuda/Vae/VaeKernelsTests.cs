using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Vae;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Vae;

/// <summary>
/// The VAE's device kernels on ILGPU's CPU accelerator against the CPU's: a convolution as im2col + the device GEMM
/// against its plain twin (the direct kernel) and both against Nn's reference convolution, within 1e-5 of max(1, max
/// |y|) (sums in other orders); GroupNorm (+ SiLU) against Nn.GroupNorm within 1e-5 of max(1, max |y|); nearest
/// upsampling bit for bit.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class VaeKernelsTests(AcceleratorFixture device)
{
    private const float Tolerance = 1e-5f;

    public static TheoryData<Conv2dGeometry, int, int> Convolutions => new()
    {
        { Conv2dGeometry.Square(5, 7, 3, 1, 1), 6, 5 },           // the resnets' and conv_in/out's 3x3, padding 1
        { Conv2dGeometry.Square(6, 4, 1), 5, 3 },                 // conv_shortcut, quant convs (1x1)
        { new Conv2dGeometry(3, 3, 3, 3, 2, 2, 0, 1, 0, 1), 7, 6 }, // Downsample2D: stride 2, padded right and bottom only, odd height
        { Conv2dGeometry.Square(2, 3, 3, 2, 1), 4, 4 },           // stride 2 with symmetric padding
    };

    [Theory]
    [MemberData(nameof(Convolutions))]
    public void AConvolutionAsIm2ColAndGemm_IsTheDirectKernel_AndTheCpuConvolution(Conv2dGeometry g, int height, int width)
    {
        var x = KernelData.Uniform(g.InChannels * height * width, 1, -1f, 1f);
        var weight = KernelData.Uniform(g.OutChannels * g.PatchSize, 2, -0.5f, 0.5f);
        var bias = KernelData.Uniform(g.OutChannels, 3, -0.5f, 0.5f);
        var s = ConvShape.Of(g, height, width);
        var expected = new float[g.OutChannels * s.Positions];
        ReferenceConv2d.Forward(x, weight, bias, expected, g, 1, height, width);

        var k = new VaeKernelSet(device.Accelerator);
        using var dx = device.Upload(x);
        using var dw = device.Upload(weight);
        using var db = device.Upload(bias);
        using var direct = device.Accelerator.Allocate1D<float>(expected.Length);
        k.ConvDirect(dx.View, dw.View, db.View, direct.View, s);
        using var cols = device.Accelerator.Allocate1D<float>((long)s.PatchSize * s.Positions);
        using var fast = device.Accelerator.Allocate1D<float>(expected.Length);
        k.Im2Col(dx.View, cols.View, s);
        k.ChannelRows(db.View, fast.View, s.Positions);
        using var gemm = new IlgpuGemm(device.Accelerator);
        gemm.Sgemm(GemmShape.Single(false, false, g.OutChannels, s.Positions, s.PatchSize, 1f, s.PatchSize, s.Positions, 1f, s.Positions), dw.View, cols.View, fast.View);

        AssertClose(expected, device.Download(direct));
        AssertClose(expected, device.Download(fast));
        if (g.IsPointwise) Assert.Equal(x, device.Download(cols)); // a 1x1 stride-1 convolution's columns are its input
    }

    [Theory]
    [InlineData(8, 4, 30, false)]
    [InlineData(8, 4, 30, true)]
    [InlineData(6, 1, 7, true)]
    public void GroupNorm_IsTheCpuGroupNorm(int channels, int groups, int spatial, bool silu)
    {
        var x = KernelData.Uniform(channels * spatial, 4, -2f, 3f);
        var gamma = KernelData.Uniform(channels, 5, 0.5f, 1.5f);
        var beta = KernelData.Uniform(channels, 6, -0.5f, 0.5f);
        var expected = new Tensor(channels * spatial);
        GroupNorm.Forward(new Tensor(x, x.Length), new Tensor(gamma, channels), new Tensor(beta, channels), expected, 1, channels, spatial, groups, GroupNorm.DiffusersEps, silu);

        var k = new VaeKernelSet(device.Accelerator);
        using var dx = device.Upload(x);
        using var dg = device.Upload(gamma);
        using var db = device.Upload(beta);
        using var stats = device.Accelerator.Allocate1D<float>(2 * groups);
        k.GroupNorm(dx.View, dg.View, db.View, dx.View, stats.View, channels, spatial, groups, GroupNorm.DiffusersEps, silu); // in place, as conv_norm_out
        AssertClose(expected.Span.ToArray(), device.Download(dx));
    }

    [Fact]
    public void NearestUpsampling_IsTheCpusBitForBit()
    {
        var x = KernelData.Uniform(3 * 4 * 5, 7, -1f, 1f);
        var expected = new float[4 * x.Length];
        NearestUpsample2x.Forward(x, expected, 3, 4, 5);
        using var dx = device.Upload(x);
        using var dy = device.Accelerator.Allocate1D<float>(expected.Length);
        new VaeKernelSet(device.Accelerator).NearestUpsample2x(dx.View, dy.View, 3, 4, 5);
        device.AssertSameBits(expected, device.Download(dy));
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = MathF.Max(1f, expected.Max(MathF.Abs));
        float worst = expected.Zip(actual, (e, a) => MathF.Abs(e - a)).Max();
        Assert.True(worst <= Tolerance * scale, $"max |device - cpu| = {worst:E3}, allowed {Tolerance * scale:E3}");
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class VaeKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : VaeKernelsTests(device);
