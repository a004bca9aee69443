using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Nn;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The element-wise device kernels on ILGPU's CPU accelerator against the CPU backend's kernels. GELU and the gated
/// residual read a linear layer's product before its bias and add the bias as they read: the CPU kernel is given the
/// sums, fl(x + b), as the CPU linear layer stores them.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class ElementKernelsTests(AcceleratorFixture device)
{
    // Lengths are whole multiples of every vector width, so the CPU kernels run their vector code throughout.
    private const int N = 48 * 16;

    private const int Width = 48;

    /// <summary>x + the bias row repeated over x's rows of <see cref="Width"/>, in float, as the CPU linear layer adds them.</summary>
    private static float[] PlusBias(float[] x, float[] bias) => x.Select((v, i) => v + bias[i % bias.Length]).ToArray();

    [Fact]
    public void GeluForward_IsTheCpuKernelsBits()
    {
        var x = KernelData.Uniform(N, 1, -8f, 8f);
        var bias = KernelData.Uniform(Width, 9, -1f, 1f);
        var expected = new float[N];
        Gelu.Forward(PlusBias(x, bias), expected);
        using var dx = device.Upload(x);
        using var db = device.Upload(bias);
        using var dy = device.Accelerator.Allocate1D<float>(N);
        device.Kernels.GeluForward(dx.View, db.View, dy.View);
        device.AssertSameBits(expected, device.Download(dy));
    }

    [Fact]
    public void GeluFromBf16Inputs_IsTheCpuKernelsBitsOnTheWidenedValues()
    {
        // fc1's output and fc2's input gradient as bf16 products store them: each value widened exactly, then as above.
        var x16 = KernelData.Uniform(N, 4, -8f, 8f).Select(Bf16.Round).ToArray();
        var g16 = KernelData.Uniform(N, 5).Select(Bf16.Round).ToArray();
        var bias = KernelData.Uniform(Width, 11, -1f, 1f);
        var x = x16.Select(Bf16.Widen).ToArray();
        var expected = new float[N];
        Gelu.Forward(PlusBias(x, bias), expected);
        var expectedGradient = new float[N];
        Gelu.Backward(PlusBias(x, bias), g16.Select(Bf16.Widen).ToArray(), expectedGradient);
        using var dx = device.Accelerator.Allocate1D(x16);
        using var dg = device.Accelerator.Allocate1D(g16);
        using var db = device.Upload(bias);
        using var dy = device.Accelerator.Allocate1D<float>(N);
        device.Kernels.GeluForward(dx.View, db.View, dy.View);
        device.AssertSameBits(expected, device.Download(dy));
        device.Kernels.GeluBackward(dx.View, db.View, dg.View, dy.View);
        device.AssertSameBits(expectedGradient, device.Download(dy));
    }

    [Fact]
    public void GeluBackward_IsTheCpuKernelsBits()
    {
        var x = KernelData.Uniform(N, 2, -8f, 8f);
        var bias = KernelData.Uniform(Width, 10, -1f, 1f);
        var g = KernelData.Uniform(N, 3);
        var expected = new float[N];
        Gelu.Backward(PlusBias(x, bias), g, expected);
        using var dx = device.Upload(x);
        using var db = device.Upload(bias);
        using var dg = device.Upload(g);
        device.Kernels.GeluBackward(dx.View, db.View, dg.View, dg.View); // in place, as the CPU kernel allows
        device.AssertSameBits(expected, device.Download(dg));
    }

    [Fact]
    public void SiluForward_MatchesTheCpuKernelToRounding()
    {
        var x = KernelData.Uniform(N, 4, -12f, 12f);
        var expected = new float[N];
        Silu.Forward(x, expected);
        using var dx = device.Upload(x);
        using var dy = device.Accelerator.Allocate1D<float>(N);
        device.Kernels.SiluForward(dx.View, dy.View);
        KernelData.AssertRelative(expected, device.Download(dy), 1e-6);
    }

    [Fact]
    public void GatedResidual_IsTheCpuKernelsBits_WithEachRowsImageGate()
    {
        const int d = 24, rowsPerImage = 5, images = 3;
        int n = d * rowsPerImage * images;
        var src = KernelData.Uniform(n, 5);
        var branch = KernelData.Uniform(n, 6);
        var gate = KernelData.Uniform(images * d, 7);
        var bias = KernelData.Uniform(d, 17, -1f, 1f);
        var withBias = PlusBias(branch, bias);
        var expected = new float[n];
        for (int row = 0; row < n / d; row++)
            GatedResidual.Forward(src.AsSpan(row * d, d), withBias.AsSpan(row * d, d), gate.AsSpan(row / rowsPerImage * d, d), expected.AsSpan(row * d, d));
        using var ds = device.Upload(src);
        using var db = device.Upload(branch);
        using var dbias = device.Upload(bias);
        using var dg = device.Upload(gate);
        device.Kernels.GatedResidualForward(ds.View, db.View, dbias.View, dg.View, ds.View, d, rowsPerImage); // dst = src, in place
        device.AssertSameBits(expected, device.Download(ds));
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class ElementKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : ElementKernelsTests(device);
