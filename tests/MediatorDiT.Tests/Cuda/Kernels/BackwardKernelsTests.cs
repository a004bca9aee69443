using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Nn;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The layer backward kernels on ILGPU's CPU accelerator against the CPU backend's kernels. Sums the CPU adds one
/// by one (over rows, images, labels; element-wise products) are gathered in the same order: bit for bit. Row sums
/// the CPU takes in vector lanes (LayerNorm's two means, the softmax's delta) run in order here: 1e-5 relative.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class BackwardKernelsTests(AcceleratorFixture device)
{
    /// <summary>The buffer from <paramref name="offset"/> on: a column slice of a modulation buffer.</summary>
    private static ArrayView<float> From(MemoryBuffer1D<float, Stride1D.Dense> buffer, long offset) =>
        ((ArrayView<float>)buffer.View).SubView(offset, buffer.Length - offset);

    [Theory]
    [InlineData(48, 3, 2, false)]
    [InlineData(37, 4, 1, true)] // a width that leaves the CPU kernel a scalar tail; dx accumulated
    public void AdaLayerNormBackward_MatchesTheCpuKernel(int d, int rowsPerImage, int images, bool accumulate)
    {
        // The modulation (B, 3d) with shift at column 0 and scale at column d, as a block's norm reads its columns.
        int rows = rowsPerImage * images, n = rows * d, modStride = 3 * d;
        var x = KernelData.Uniform(n, 41, -3f, 5f);
        var mod = KernelData.Uniform(images * modStride, 42, -0.5f, 0.5f);
        var g = KernelData.Uniform(n, 43, -1f, 1f);
        var dx0 = KernelData.Uniform(n, 44, -1f, 1f);
        var dMod0 = KernelData.Uniform(images * modStride, 45, -1f, 1f);
        float[] xhat = new float[n], y = new float[n], stats = new float[2 * rows], dxhat = new float[d];
        float[] dx = (float[])dx0.Clone(), dMod = (float[])dMod0.Clone();
        for (int r = 0; r < rows; r++)
        {
            int c = r / rowsPerImage * modStride;
            (stats[2 * r], stats[2 * r + 1]) = AdaLayerNormKernel.ForwardRow(x.AsSpan(r * d, d), mod.AsSpan(c, d), mod.AsSpan(c + d, d),
                xhat.AsSpan(r * d, d), y.AsSpan(r * d, d));
        }
        for (int r = 0; r < rows; r++)
        {
            int c = r / rowsPerImage * modStride;
            AdaLayerNormKernel.BackwardRow(g.AsSpan(r * d, d), xhat.AsSpan(r * d, d), mod.AsSpan(c + d, d), stats[2 * r + 1],
                dMod.AsSpan(c, d), dMod.AsSpan(c + d, d), dxhat, dx.AsSpan(r * d, d), accumulate);
        }
        using var dg = device.Upload(g);
        using var dh = device.Upload(xhat);
        using var dm = device.Upload(mod);
        using var ds = device.Upload(stats);
        using var ddm = device.Upload(dMod0);
        using var ddx = device.Upload(dx0);
        device.Kernels.AdaLayerNormBackward(dg.View, dh.View, From(dm, d), ds.View, ddm.View, From(ddm, d), ddx.View, d, rowsPerImage,
            modStride, accumulate);
        device.AssertSameBits(dMod, device.Download(ddm));
        GradientData.AssertClose(dx, device.Download(ddx), 1e-5, "dx");
    }

    [Theory]
    [InlineData(false, 37)]
    [InlineData(true, 37)]
    [InlineData(true, 130)]
    public void AdaLayerNormBackward_FromTheInput_IsTheBackwardFromTheStoredXhat(bool warpRows, int d)
    {
        // The second LayerNorm of a block keeps no xhat: its forward writes none (y and stats unchanged), and its
        // backward makes xhat again from x and stats, giving the bits of the backward that reads the stored xhat.
        // 2 images of 5 rows: the column kernel's four-row steps and its remainder.
        const int rowsPerImage = 5, images = 2, rows = rowsPerImage * images;
        int modStride = 6 * d;
        var kernels = warpRows ? device.WarpRowKernels : device.ThreadRowKernels;
        var x = KernelData.Uniform(rows * d, 141, -3f, 5f);
        var shiftScale = KernelData.Uniform(2 * images * d, 142, -0.5f, 0.5f); // dense (B, d) shift rows, then scale rows
        var mod = KernelData.Uniform(images * modStride, 143, -1f, 1f);
        var g = KernelData.Uniform(rows * d, 144, -2f, 2f);
        var residual = KernelData.Uniform(rows * d, 145, -1f, 1f);
        using var dx0 = device.Upload(x);
        using var dss = device.Upload(shiftScale);
        var shift = dss.View.SubView(0, images * d);
        var scale = dss.View.SubView(images * d, images * d);
        using var xhat = device.Upload(new float[rows * d]);
        using var y = device.Upload(new float[rows * d]);
        using var stats = device.Upload(new float[2 * rows]);
        kernels.AdaLayerNormForward(dx0.View, shift, scale, xhat.View, y.View, stats.View, d, rowsPerImage);
        using var y2 = device.Upload(new float[rows * d]);
        using var stats2 = device.Upload(new float[2 * rows]);
        kernels.AdaLayerNormForward(dx0.View, shift, scale, default, y2.View, stats2.View, d, rowsPerImage);
        device.AssertSameBits(device.Download(y), device.Download(y2));
        device.AssertSameBits(device.Download(stats), device.Download(stats2));

        float[][] Backward(bool fromInput)
        {
            using var dg = device.Upload(g);
            using var dm = device.Upload(mod);
            using var ddm = device.Upload(new float[images * modStride]);
            using var dres = device.Upload(residual);
            using var ddx = device.Upload(new float[rows * d]);
            kernels.AdaLayerNormBackward(dg.View, fromInput ? dx0.View : xhat.View, From(dm, d), stats.View, ddm.View, From(ddm, d), ddx.View, d,
                rowsPerImage, modStride, accumulate: true, residual: dres.View, xhatFromInput: fromInput);
            return [device.Download(ddx), device.Download(ddm)];
        }
        var expected = Backward(fromInput: false);
        var actual = Backward(fromInput: true);
        Assert.Contains(expected[1], v => v != 0);
        device.AssertSameBits(expected[0], actual[0], "dx");
        device.AssertSameBits(expected[1], actual[1], "dShift and dScale");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AdaLayerNormBackward_WithAResidual_IsTheCopyThenAccumulate(bool warpRows)
    {
        // dx = residual + the input gradient, the bits of copying the residual into dx and accumulating; dx's own old values unread.
        const int d = 37, rowsPerImage = 3, images = 2, modStride = 6 * d, rows = rowsPerImage * images;
        var kernels = warpRows ? device.WarpRowKernels : device.ThreadRowKernels;
        var g = KernelData.Uniform(rows * d, 131, -2f, 2f);
        var xhat = KernelData.Uniform(rows * d, 132, -2f, 2f);
        var mod = KernelData.Uniform(images * modStride, 133, -1f, 1f);
        var stats = KernelData.Uniform(2 * rows, 134, 0.5f, 2f);
        var residual = KernelData.Uniform(rows * d, 135, -1f, 1f);
        float[][] Run(bool copy)
        {
            using var dg = device.Upload(g);
            using var dh = device.Upload(xhat);
            using var dm = device.Upload(mod);
            using var ds = device.Upload(stats);
            using var ddm = device.Upload(new float[images * modStride]);
            using var dres = device.Upload(residual);
            using var ddx = device.Upload(KernelData.Uniform(rows * d, 136)); // stale values
            if (copy)
            {
                dres.View.CopyTo(ddx.View);
                kernels.AdaLayerNormBackward(dg.View, dh.View, From(dm, d), ds.View, ddm.View, From(ddm, d), ddx.View, d, rowsPerImage, modStride, accumulate: true);
            }
            else
                kernels.AdaLayerNormBackward(dg.View, dh.View, From(dm, d), ds.View, ddm.View, From(ddm, d), ddx.View, d, rowsPerImage, modStride, accumulate: true,
                    residual: dres.View);
            return [device.Download(ddx), device.Download(ddm), device.Download(dres)];
        }
        var expected = Run(copy: true);
        var actual = Run(copy: false);
        for (int i = 0; i < expected.Length; i++) device.AssertSameBits(expected[i], actual[i]);
        device.AssertSameBits(residual, actual[2]); // read, not written
        Assert.NotEqual(residual, actual[0]);
    }

    [Fact]
    public void GatedResidualBackward_EqualsTheCpuKernelBitForBit()
    {
        const int d = 19, rowsPerImage = 5, images = 2, modStride = 6 * d, gateCol = 2 * d;
        int n = d * rowsPerImage * images;
        var dy = KernelData.Uniform(n, 51);
        var branch = KernelData.Uniform(n, 52);
        var mod = KernelData.Uniform(images * modStride, 53, -1f, 1f);
        var dMod0 = KernelData.Uniform(images * modStride, 54, -1f, 1f);
        var dMod = (float[])dMod0.Clone();
        var dBranch = new float[n];
        // The device reads the branch before its bias and adds it; the CPU kernel gets the sums, as its linear layer stores them.
        var bias = KernelData.Uniform(d, 55, -1f, 1f);
        var withBias = branch.Select((v, i) => v + bias[i % d]).ToArray();
        for (int r = 0; r < rowsPerImage * images; r++)
        {
            int c = r / rowsPerImage * modStride + gateCol;
            GatedResidual.Backward(dy.AsSpan(r * d, d), withBias.AsSpan(r * d, d), mod.AsSpan(c, d), dMod.AsSpan(c, d), dBranch.AsSpan(r * d, d));
        }
        using var ddy = device.Upload(dy);
        using var db = device.Upload(branch);
        using var dbias = device.Upload(bias);
        using var dm = device.Upload(mod);
        using var ddm = device.Upload(dMod0);
        using var ddb = device.Accelerator.Allocate1D<float>(n);
        device.Kernels.GatedResidualBackward(ddy.View, db.View, dbias.View, From(dm, gateCol), From(ddm, gateCol), ddb.View, d, rowsPerImage, modStride);
        device.AssertSameBits(dMod, device.Download(ddm));
        device.AssertSameBits(dBranch, device.Download(ddb));
    }

    [Fact]
    public void SiluBackward_MatchesTheCpuKernelToRounding()
    {
        var x = KernelData.Uniform(301, 61, -12f, 12f);
        var dy = KernelData.Uniform(301, 62);
        var expected = new float[x.Length];
        Silu.Backward(x, dy, expected);
        using var dx = device.Upload(x);
        using var ddy = device.Upload(dy);
        device.Kernels.SiluBackward(dx.View, ddy.View, ddy.View); // in place, as the timestep embedder calls it
        // The device's sigmoid takes DeviceMath.Exp (PTX has no exp), the CPU's MathF.Exp: a few units in the last place.
        KernelData.AssertRelative(expected, device.Download(ddy), 1e-6);
    }

    [Theory]
    [InlineData(64, 5)]
    [InlineData(19, 3)]
    public void SoftmaxBackward_MatchesTheCpuKernel_AndSumsTheSharedBiasGradient(int n, int rows)
    {
        var p = KernelData.Uniform(rows * n, 71, -20f, 20f);
        var bias = KernelData.Uniform(n, 72, -3f, 3f);
        for (int r = 0; r < rows; r++) SoftmaxRows.Forward(p.AsSpan(r * n, n), bias);
        var dp = KernelData.Uniform(rows * n, 73);
        var expected = (float[])dp.Clone();
        var dBias = KernelData.Uniform(n, 74, -1f, 1f);
        var expectedBias = (float[])dBias.Clone();
        for (int r = 0; r < rows; r++)
        {
            SoftmaxRows.Backward(p.AsSpan(r * n, n), expected.AsSpan(r * n, n));
            for (int j = 0; j < n; j++) expectedBias[j] += expected[r * n + j];
        }
        using var dpv = device.Upload(p);
        using var ddp = device.Upload(dp);
        using var ddb = device.Upload(dBias);
        device.Kernels.SoftmaxBackward(dpv.View, ddp.View, ddb.View, n);
        GradientData.AssertClose(expected, device.Download(ddp), 1e-5, "dlogits");
        GradientData.AssertClose(expectedBias, device.Download(ddb), 1e-5, "dbias");
    }

    [Fact]
    public void ColumnSums_EqualTheLinearLayersBiasGradientBitForBit()
    {
        const int rows = 23, inF = 3, outF = 17;
        var x = KernelData.Uniform(rows * inF, 81);
        var w = KernelData.Uniform(outF * inF, 82);
        var dy = KernelData.Uniform(rows * outF, 83);
        var dBias0 = KernelData.Uniform(outF, 84);
        var dBias = (float[])dBias0.Clone();
        Linear.Backward(x, w, dy, new float[outF * inF], dBias, [], rows, inF, outF);
        using var ddy = device.Upload(dy);
        using var ddb = device.Upload(dBias0);
        device.Kernels.ColumnSums(ddy.View, ddb.View, outF);
        device.AssertSameBits(dBias, device.Download(ddb));
    }

    [Fact]
    public void UnpatchifyBackward_EqualsTheCpuTranspose()
    {
        // SiT with learned sigma: 2C channels per token, C kept.
        const int batch = 2, channels = 4, keep = 2, grid = 3, patch = 2, size = grid * patch, k = patch * patch * channels, n = grid * grid;
        var dImage = KernelData.Uniform(batch * keep * size * size, 91);
        var expected = new float[batch * n * k];
        for (int b = 0; b < batch; b++)
            Patchify.UnpatchifyBackward(dImage.AsSpan(b * keep * size * size), expected.AsSpan(b * n * k, n * k), channels, grid, patch, keep);
        using var di = device.Upload(dImage);
        using var dt = device.Upload(KernelData.Uniform(expected.Length, 92)); // stale values must be overwritten
        device.Kernels.UnpatchifyBackward(di.View, dt.View, batch, channels, grid, patch, keep);
        device.AssertSameBits(expected, device.Download(dt));
    }

    [Fact]
    public void PatchesToImage_EqualsTheCpuTranspose()
    {
        const int batch = 2, channels = 3, h = 6, w = 4, patch = 2, k = channels * patch * patch, n = h / patch * (w / patch);
        var cols = KernelData.Uniform(batch * n * k, 93);
        var expected = new float[batch * channels * h * w];
        for (int b = 0; b < batch; b++)
            Patchify.PatchesToImage(cols.AsSpan(b * n * k, n * k), expected.AsSpan(b * channels * h * w, channels * h * w), channels, h, w, patch);
        using var dc = device.Upload(cols);
        using var dx = device.Accelerator.Allocate1D<float>(expected.Length);
        device.Kernels.PatchesToImage(dc.View, dx.View, batch, channels, h, w, patch);
        device.AssertSameBits(expected, device.Download(dx));
    }

    [Fact]
    public void LabelTableGradient_EqualsTheCpuScatterAddBitForBit()
    {
        // Repeated labels and the null label (row 5): rows add in image order.
        const int classes = 5, d = 7;
        int[] labels = [3, 0, 3, 5, 3, 1];
        var dOut = KernelData.Uniform(labels.Length * d, 95);
        var table0 = KernelData.Uniform((classes + 1) * d, 96);
        var expected = (float[])table0.Clone();
        for (int b = 0; b < labels.Length; b++)
        for (int j = 0; j < d; j++)
            expected[labels[b] * d + j] += dOut[b * d + j];
        using var dl = device.Accelerator.Allocate1D(labels);
        using var dOutV = device.Upload(dOut);
        using var dt = device.Upload(table0);
        device.Kernels.LabelTableGradient(dl.View, dOutV.View, dt.View, d);
        device.AssertSameBits(expected, device.Download(dt));
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class BackwardKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : BackwardKernelsTests(device);
