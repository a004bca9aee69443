using ILGPU;
using ILGPU.Runtime;

namespace MediatorDiT.Cuda.Vae;

/// <summary>
/// The VAE's kernels (<see cref="VaeKernels"/>) compiled for one accelerator, each loaded at first use, with launchers
/// that check their views. Launches are queued on the accelerator's default stream.
/// </summary>
internal sealed class VaeKernelSet(Accelerator accelerator)
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ConvShape>? _im2col;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape>? _convDirect;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int>? _channelRows;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? _addChannelBias;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, float>? _groupStats;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>? _groupApply;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>? _upsample;

    public Accelerator Accelerator => accelerator;

    /// <summary>cols (in kh kw, OH OW) of x (in, H, W) for the convolution <paramref name="s"/>.</summary>
    public void Im2Col(ArrayView<float> x, ArrayView<float> cols, ConvShape s)
    {
        long n = (long)s.PatchSize * s.Positions;
        Check(x.Length >= (long)s.InChannels * s.Height * s.Width && cols.Length >= n, "x or cols is too short for the convolution");
        (_im2col ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ConvShape>(VaeKernels.Im2Col))((int)n, x, cols, s);
    }

    /// <summary>y (out, OH, OW) = the convolution of x by weight (out, in, kh, kw) plus bias, one thread per output (the reference path).</summary>
    public void ConvDirect(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y, ConvShape s)
    {
        long n = (long)s.OutChannels * s.Positions;
        Check(weight.Length >= (long)s.OutChannels * s.PatchSize && bias.Length >= s.OutChannels && y.Length >= n, "the weight, bias or y is too short");
        (_convDirect ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape>(
            VaeKernels.ConvDirect))((int)n, x, weight, bias, y, s);
    }

    /// <summary>y (C, n) with row c = bias[c].</summary>
    public void ChannelRows(ArrayView<float> bias, ArrayView<float> y, int n)
    {
        Check(n >= 1 && y.Length % n == 0 && bias.Length >= y.Length / n, "y must hold one row of n per bias value");
        (_channelRows ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(VaeKernels.ChannelRows))((int)y.Length, bias, y, n);
    }

    /// <summary>y = x + bias[c] over y's (C, n).</summary>
    public void AddChannelBias(ArrayView<float> x, ArrayView<float> bias, ArrayView<float> y, int n)
    {
        Check(n >= 1 && y.Length % n == 0 && x.Length >= y.Length && bias.Length >= y.Length / n, "x, bias or y do not fit (C, n)");
        (_addChannelBias ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(
            VaeKernels.AddChannelBias))((int)y.Length, x, bias, y, n);
    }

    /// <summary>GroupNorm (+ SiLU) of x (C, spatial) into y (may be x) with <paramref name="groups"/> groups; stats holds 2 floats per group.</summary>
    public void GroupNorm(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y, ArrayView<float> stats,
        int channels, int spatial, int groups, float eps, bool silu)
    {
        long n = (long)channels * spatial;
        Check(groups >= 1 && channels % groups == 0, $"{channels} channels do not split into {groups} groups");
        Check(x.Length >= n && y.Length >= n && gamma.Length >= channels && beta.Length >= channels && stats.Length >= 2L * groups, "a GroupNorm view is too short");
        int perGroup = channels / groups;
        (_groupStats ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, float>(VaeKernels.GroupStats))(
            groups, x, stats, perGroup * spatial, eps);
        (_groupApply ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            int, int, int>(VaeKernels.GroupNormApply))((int)n, x, stats, gamma, beta, y, spatial, perGroup, silu ? 1 : 0);
    }

    /// <summary>y (C, 2h, 2w) = nearest 2x upsampling of x (C, h, w).</summary>
    public void NearestUpsample2x(ArrayView<float> x, ArrayView<float> y, int channels, int height, int width)
    {
        long n = 4L * channels * height * width;
        Check(x.Length >= n / 4 && y.Length >= n, "x or y is too short for the upsampling");
        (_upsample ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(VaeKernels.NearestUpsample2x))(
            (int)n, x, y, height, width);
    }

    private static void Check(bool ok, string what)
    {
        if (!ok) throw new ArgumentException(what + ".");
    }
}
