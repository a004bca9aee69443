using MediatorDiT.Nn;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The row device kernels on ILGPU's CPU accelerator against the CPU backend's kernels. Their sums run in another
/// order than the CPU's vector lanes, so they agree to rounding: 1e-5 relative.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class RowKernelsTests(AcceleratorFixture device)
{
    [Theory]
    [InlineData(48, 3, 2)]
    [InlineData(37, 4, 1)] // a width that leaves the CPU kernel a scalar tail
    public void AdaLayerNormForward_MatchesTheCpuKernel(int d, int rowsPerImage, int images)
    {
        int rows = rowsPerImage * images, n = rows * d;
        var x = KernelData.Uniform(n, 21, -3f, 5f);
        var shift = KernelData.Uniform(images * d, 22, -1f, 1f);
        var scale = KernelData.Uniform(images * d, 23, -0.5f, 0.5f);
        float[] xhat = new float[n], y = new float[n], stats = new float[2 * rows];
        for (int r = 0; r < rows; r++)
        {
            int c = r / rowsPerImage * d;
            (stats[2 * r], stats[2 * r + 1]) = AdaLayerNormKernel.ForwardRow(x.AsSpan(r * d, d), shift.AsSpan(c, d), scale.AsSpan(c, d),
                xhat.AsSpan(r * d, d), y.AsSpan(r * d, d));
        }
        using var dx = device.Upload(x);
        using var dsh = device.Upload(shift);
        using var dsc = device.Upload(scale);
        using var dh = device.Accelerator.Allocate1D<float>(n);
        using var dy = device.Accelerator.Allocate1D<float>(n);
        using var ds = device.Accelerator.Allocate1D<float>(2 * rows);
        device.Kernels.AdaLayerNormForward(dx.View, dsh.View, dsc.View, dh.View, dy.View, ds.View, d, rowsPerImage);
        AssertClose(stats, device.Download(ds));
        AssertClose(xhat, device.Download(dh));
        AssertClose(y, device.Download(dy));
    }

    /// <summary>
    /// 1e-5 relative to the row's scale: LayerNorm's outputs are O(1), and an output near zero (a cancellation
    /// in x - mean or in xhat (1 + scale) + shift) carries the absolute rounding of its inputs.
    /// </summary>
    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs((double)actual[i] - expected[i]) <= 1e-5 * Math.Max(1, Math.Abs((double)expected[i]))))
                Assert.Fail($"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }

    [Theory]
    [InlineData(64, 5, false)]
    [InlineData(64, 5, true)]
    [InlineData(19, 3, true)]
    public void SoftmaxForward_MatchesTheCpuKernel(int n, int rows, bool hasBias)
    {
        var x = KernelData.Uniform(rows * n, 31, -20f, 20f);
        var bias = hasBias ? KernelData.Uniform(n, 32, -3f, 3f) : [];
        var expected = (float[])x.Clone();
        var lse = new float[rows];
        for (int r = 0; r < rows; r++) lse[r] = SoftmaxRows.Forward(expected.AsSpan(r * n, n), bias);
        using var dx = device.Upload(x);
        using var db = device.Upload(hasBias ? bias : [0f]);
        using var dl = device.Accelerator.Allocate1D<float>(rows);
        device.Kernels.SoftmaxForward(dx.View, db.View, dl.View, n, hasBias);
        var probabilities = device.Download(dx);
        KernelData.AssertRelative(expected, probabilities, 1e-5);
        KernelData.AssertRelative(lse, device.Download(dl), 1e-5);
        for (int r = 0; r < rows; r++) Assert.Equal(1.0, probabilities.AsSpan(r * n, n).ToArray().Sum(v => (double)v), 5);
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class RowKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : RowKernelsTests(device);
