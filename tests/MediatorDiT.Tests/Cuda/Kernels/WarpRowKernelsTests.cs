using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The row kernels with a warp per row against their reference twins with a thread per row, on the CPU accelerator
/// (warps of 4 lanes, and 32 in the twin at the end): the same formulas with the sums in another order, 1e-5 of
/// max(1, |reference|). Row lengths below, at and above either warp width, and row counts that leave the last group part empty.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class WarpRowKernelsTests(AcceleratorFixture device)
{
    public static TheoryData<int, int> Shapes => new() { { 2, 3 }, { 3, 5 }, { 4, 8 }, { 32, 3 }, { 33, 7 }, { 130, 37 } };

    [Fact]
    public void ByDefault_ACpuAcceleratorRunsAThreadPerRow_ACardAWarpPerRow_TheSwitchChoosesEither()
    {
        Assert.Equal(device.Accelerator.AcceleratorType != ILGPU.Runtime.AcceleratorType.CPU, new KernelSet(device.Accelerator).WarpRows);
        Assert.False(device.ThreadRowKernels.WarpRows);
        Assert.True(device.WarpRowKernels.WarpRows);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void AdaLayerNorm_ForwardAndInputGradient_MatchTheThreadPerRowKernels(int d, int rows)
    {
        var x = KernelData.Uniform(rows * d, 111, -3f, 3f);
        var mod = KernelData.Uniform(rows * 2 * d, 112, -1f, 1f); // one image per row: shift, scale (rows, 2d)
        var g = KernelData.Uniform(rows * d, 113, -2f, 2f);
        var dx0 = KernelData.Uniform(rows * d, 114, -1f, 1f);
        float[][] Run(KernelSet kernels)
        {
            using var dX = device.Upload(x);
            using var dMod = device.Upload(mod);
            using var dG = device.Upload(g);
            using var xhat = device.Accelerator.Allocate1D<float>(rows * d);
            using var y = device.Accelerator.Allocate1D<float>(rows * d);
            using var stats = device.Accelerator.Allocate1D<float>(2 * rows);
            using var dx = device.Upload(dx0);
            using var dShift = device.Accelerator.Allocate1D<float>(rows * 2 * d);
            dShift.MemSetToZero();
            var scale = dMod.View.SubView(d, rows * 2 * d - d);
            // The forward reads dense (B, d) rows; give it the modulation's shift and scale halves copied apart.
            var shiftDense = new float[rows * d];
            var scaleDense = new float[rows * d];
            for (int r = 0; r < rows; r++)
            {
                Array.Copy(mod, r * 2 * d, shiftDense, r * d, d);
                Array.Copy(mod, r * 2 * d + d, scaleDense, r * d, d);
            }
            using var dShiftDense = device.Upload(shiftDense);
            using var dScaleDense = device.Upload(scaleDense);
            kernels.AdaLayerNormForward(dX.View, dShiftDense.View, dScaleDense.View, xhat.View, y.View, stats.View, d, 1);
            kernels.AdaLayerNormBackward(dG.View, xhat.View, scale, stats.View, dShift.View, dShift.View.SubView(d, rows * 2 * d - d), dx.View, d, 1, 2 * d,
                accumulate: true);
            return [device.Download(xhat), device.Download(y), device.Download(stats), device.Download(dx), device.Download(dShift)];
        }
        var expected = Run(device.ThreadRowKernels);
        var actual = Run(device.WarpRowKernels);
        string[] names = ["xhat", "y", "stats", "dx", "dShift and dScale"];
        for (int i = 0; i < names.Length; i++) AssertClose(expected[i], actual[i], names[i]);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GatedResidualAdaLayerNorm_IsTheGatedResidualThenTheLayerNorm_BitForBit(int d, int rows)
    {
        // Two images (gate, shift and scale rows per image). Fused: fp32 with xhat (the final layer's), and bf16 in
        // place (dst = src: sampling's residual stream) without xhat (a block's); each against the two kernels of the
        // same row mapping, a warp per row (one kernel) and a thread per row (the two kernels run by the launcher).
        int rowsPerImage = (rows + 1) / 2;
        var src = KernelData.Uniform(rows * d, 121, -2f, 2f);
        var branch = KernelData.Uniform(rows * d, 122, -3f, 3f);
        var bias = KernelData.Uniform(d, 123, -1f, 1f);
        var gate = KernelData.Uniform(2 * d, 124, -1.5f, 1.5f);
        var shift = KernelData.Uniform(2 * d, 125, -1f, 1f);
        var scale = KernelData.Uniform(2 * d, 126, -1f, 1f);
        foreach (var kernels in new[] { device.ThreadRowKernels, device.WarpRowKernels })
        {
            using var dSrc = device.Upload(src);
            using var dBranch = device.Upload(branch);
            using var dBias = device.Upload(bias);
            using var dGate = device.Upload(gate);
            using var dShift = device.Upload(shift);
            using var dScale = device.Upload(scale);
            MemoryBuffer1D<float, Stride1D.Dense> Floats(int length) => device.Accelerator.Allocate1D<float>(length);
            MemoryBuffer1D<ushort, Stride1D.Dense> Halves() => device.Accelerator.Allocate1D<ushort>(rows * d);
            ushort[] DownloadHalves(MemoryBuffer1D<ushort, Stride1D.Dense> buffer)
            {
                device.Accelerator.Synchronize();
                return buffer.GetAsArray1D();
            }

            using MemoryBuffer1D<float, Stride1D.Dense> dst = Floats(rows * d), xhat = Floats(rows * d), y = Floats(rows * d), stats = Floats(2 * rows),
                scratch = Floats(rows * d), stats16 = Floats(2 * rows);
            using var y16 = Halves();
            kernels.GatedResidualForward(dSrc.View, dBranch.View, dBias.View, dGate.View, dst.View, d, rowsPerImage);
            kernels.AdaLayerNormForward(dst.View, dShift.View, dScale.View, xhat.View, y.View, stats.View, d, rowsPerImage);
            kernels.AdaLayerNormForwardBf16(dst.View, dShift.View, dScale.View, default, scratch.View, y16.View, stats16.View, d, rowsPerImage);
            string how = kernels.WarpRows ? "a warp per row" : "a thread per row";

            using MemoryBuffer1D<float, Stride1D.Dense> dst2 = Floats(rows * d), xhat2 = Floats(rows * d), y2 = Floats(rows * d), stats2 = Floats(2 * rows);
            kernels.GatedResidualAdaLayerNorm(new GatedResidualViews(dSrc.View, dBranch.View, dBias.View, dGate.View, dst2.View), dShift.View, dScale.View,
                xhat2.View, y2.View, stats2.View, d, rowsPerImage);
            device.AssertSameBits(device.Download(dst), device.Download(dst2), $"dst, {how}");
            device.AssertSameBits(device.Download(xhat), device.Download(xhat2), $"xhat, {how}");
            device.AssertSameBits(device.Download(y), device.Download(y2), $"y, {how}");
            device.AssertSameBits(device.Download(stats), device.Download(stats2), $"stats, {how}");

            using var inPlace = device.Upload(src);
            using var y16b = Halves();
            using var stats3 = Floats(2 * rows);
            kernels.GatedResidualAdaLayerNormBf16(new GatedResidualViews(inPlace.View, dBranch.View, dBias.View, dGate.View, inPlace.View), dShift.View,
                dScale.View, default, scratch.View, y16b.View, stats3.View, d, rowsPerImage);
            device.AssertSameBits(device.Download(dst), device.Download(inPlace), $"dst in place, {how}");
            device.AssertSameHalves(DownloadHalves(y16), DownloadHalves(y16b), $"y16, {how}");
            device.AssertSameBits(device.Download(stats16), device.Download(stats3), $"bf16 stats, {how}");
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Softmaxes_AndTheSoftmaxBackward_MatchTheThreadPerRowKernels(int n, int rows)
    {
        // The attention tile's rows (their lse at the tile's items and rows), rows with a bias table of 3 rows, and
        // those rows' backward.
        var logits = KernelData.Uniform(rows * n, 115, -6f, 6f);
        var bias = KernelData.Uniform(3 * n, 116, -1f, 1f);
        var upstream = KernelData.Uniform(rows * n, 117, -2f, 2f);
        var tile = new AttentionTile(n, 1, 2, n - 1); // items of one row each, the last row of items 2 .. 2 + rows - 1
        float[][] Run(KernelSet kernels)
        {
            using var s = device.Upload(logits);
            using var lse = device.Upload(new float[(2 + rows) * n]);
            using var x = device.Upload(logits);
            using var b = device.Upload(bias);
            kernels.TileSoftmax(s.View, lse.View, rows, tile);
            kernels.SoftmaxRowsWithBiasTable(x.View, b.View, rows, n, 3);
            // The backward from the biased probabilities, on an upstream gradient of whole rows.
            using var dp = device.Upload(upstream);
            kernels.SoftmaxBackward(x.View, dp.View, n);
            return [device.Download(s), device.Download(lse), device.Download(x), device.Download(dp)];
        }
        var expected = Run(device.ThreadRowKernels);
        var actual = Run(device.WarpRowKernels);
        string[] names = ["tile probabilities", "tile lse", "biased probabilities", "softmax input gradient"];
        for (int i = 0; i < names.Length; i++) AssertClose(expected[i], actual[i], names[i]);
    }

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        Assert.Contains(expected, v => v != 0); // the comparison compares something
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs((double)actual[i] - expected[i]) <= 1e-5 * Math.Max(1, Math.Abs((double)expected[i]))))
                Assert.Fail($"{what} element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class WarpRowKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : WarpRowKernelsTests(device);
