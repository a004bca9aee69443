using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Models;
using MediatorDiT.Nn;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The embedding, layout and guidance device kernels on ILGPU's CPU accelerator against the CPU routines they mirror.
/// Rearrangements and element-wise sums are the same bits; the timestep frequencies agree to rounding.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class ForwardKernelsTests(AcceleratorFixture device)
{
    [Fact]
    public void PatchifyAndUnpatchify_AreTheCpuRearrangements()
    {
        const int batch = 2, c = 3, p = 2, grid = 3, size = grid * p, keep = 2, n = grid * grid;
        var x = KernelData.Uniform(batch * c * size * size, 51);
        int k = c * p * p;
        var cols = new float[batch * n * k];
        for (int b = 0; b < batch; b++)
            Patchify.ImageToPatches(x.AsSpan(b * c * size * size, c * size * size), cols.AsSpan(b * n * k, n * k), c, size, size, p);
        var image = new float[batch * keep * size * size];
        for (int b = 0; b < batch; b++)
            Patchify.Unpatchify(cols.AsSpan(b * n * k, n * k), image.AsSpan(b * keep * size * size), c, grid, p, keep);

        using var dx = device.Upload(x);
        using var dcols = device.Accelerator.Allocate1D<float>(cols.Length);
        using var dimage = device.Accelerator.Allocate1D<float>(image.Length);
        device.Kernels.Patchify(dx.View, dcols.View, new PatchGeometry(c, p, grid, c), batch);
        device.Kernels.Unpatchify(dcols.View, dimage.View, new PatchGeometry(c, p, grid, keep), batch);
        device.AssertSameBits(cols, device.Download(dcols));
        device.AssertSameBits(image, device.Download(dimage));
    }

    [Fact]
    public void LabelEmbed_RepeatRow_AddRepeated_AndSplitModulation_AreTheCpuSums()
    {
        const int d = 5, batch = 3, classes = 4;
        var table = KernelData.Uniform((classes + 1) * d, 52);
        var temb = KernelData.Uniform(batch * d, 53);
        int[] labels = [2, classes, 0]; // the null label included
        var expected = new float[batch * d];
        for (int b = 0; b < batch; b++)
        for (int j = 0; j < d; j++)
            expected[b * d + j] = table[labels[b] * d + j] + temb[b * d + j];
        using var dtable = device.Upload(table);
        using var dtemb = device.Upload(temb);
        using var dlabels = device.Accelerator.Allocate1D(labels);
        using var dc = device.Accelerator.Allocate1D<float>(batch * d);
        device.Kernels.LabelEmbed(dtable.View, dlabels.View, dtemb.View, dc.View, d);
        device.AssertSameBits(expected, device.Download(dc));

        // Bias rows then a position table added per image of 2 rows.
        var bias = KernelData.Uniform(d, 54);
        var pos = KernelData.Uniform(2 * d, 55);
        var rows = new float[4 * d];
        for (int i = 0; i < rows.Length; i++) rows[i] = bias[i % d] + pos[i % (2 * d)];
        using var dbias = device.Upload(bias);
        using var dpos = device.Upload(pos);
        using var drows = device.Accelerator.Allocate1D<float>(rows.Length);
        device.Kernels.RepeatRow(dbias.View, drows.View, d);
        device.Kernels.AddRepeated(drows.View, dpos.View, 2 * d);
        device.AssertSameBits(rows, device.Download(drows));

        // mod (B, 6D) -> chunks (6, B, D).
        var mod = KernelData.Uniform(batch * 6 * d, 56);
        var chunks = new float[mod.Length];
        for (int chunk = 0; chunk < 6; chunk++)
        for (int b = 0; b < batch; b++)
            mod.AsSpan(b * 6 * d + chunk * d, d).CopyTo(chunks.AsSpan((chunk * batch + b) * d, d));
        using var dmod = device.Upload(mod);
        using var dchunks = device.Accelerator.Allocate1D<float>(chunks.Length);
        device.Kernels.SplitModulation(dmod.View, dchunks.View, batch, d, 6);
        device.AssertSameBits(chunks, device.Download(dchunks));
    }

    [Fact]
    public void Guidance_IsTheCpuGuidanceKernelsBits_OnTheGuidedChannelsOnly()
    {
        const int half = 2, per = 12, guided = 7;
        var output = KernelData.Uniform(2 * half * per, 57);
        var expected = (float[])output.Clone();
        for (int s = 0; s < half; s++)
            ReferenceGuidanceKernel.Combine(expected.AsSpan(s * per, guided), expected.AsSpan((half + s) * per, guided), 4f);
        using var dout = device.Upload(output);
        device.Kernels.Guidance(dout.View, half, per, guided, 4f);
        device.AssertSameBits(expected, device.Download(dout));
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class ForwardKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : ForwardKernelsTests(device);
