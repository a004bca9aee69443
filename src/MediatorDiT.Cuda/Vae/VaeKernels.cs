using ILGPU;
using MediatorDiT.Nn;

namespace MediatorDiT.Cuda.Vae;

/// <summary>
/// One image's convolution shape for the device kernels: input (InChannels, Height, Width), the kernel, stride and the
/// top/left zero padding (bottom/right padding only shows in OutHeight/OutWidth, past which the input reads as 0), and
/// the output (OutChannels, OutHeight, OutWidth).
/// </summary>
internal readonly record struct ConvShape(int InChannels, int Height, int Width, int KernelH, int KernelW, int StrideH, int StrideW,
    int PadTop, int PadLeft, int OutChannels, int OutHeight, int OutWidth)
{
    /// <summary>The shape of <paramref name="g"/> over an input of <paramref name="height"/> x <paramref name="width"/>.</summary>
    public static ConvShape Of(Conv2dGeometry g, int height, int width) =>
        new(g.InChannels, height, width, g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadTop, g.PadLeft, g.OutChannels,
            g.OutputHeight(height), g.OutputWidth(width));

    /// <summary>Rows of the im2col matrix: in x kh x kw, the weight's row length.</summary>
    public int PatchSize => InChannels * KernelH * KernelW;

    /// <summary>Output positions: OutHeight x OutWidth.</summary>
    public int Positions => OutHeight * OutWidth;
}

/// <summary>
/// The VAE's device kernels, one thread per output element or per group: im2col for the convolutions (whose products
/// run on the device GEMM) and its plain twin, a direct convolution; GroupNorm's statistics and its affine (+ SiLU);
/// nearest 2x upsampling; per-channel biases (the residual sums are the network's <c>KernelSet.AddInto</c>). All
/// tensors are one image's (C, H, W), channel-major as the CPU VAE keeps them.
/// </summary>
internal static class VaeKernels
{
    /// <summary>
    /// cols (in kh kw, OH OW): cols[(c kh + i) kw + j, oy OW + ox] = x[c, oy sh - pt + i, ox sw - pl + j], 0 outside the
    /// input; with the weight (out, in kh kw) the convolution is weight cols.
    /// </summary>
    public static void Im2Col(Index1D index, ArrayView<float> x, ArrayView<float> cols, ConvShape s)
    {
        int positions = s.OutHeight * s.OutWidth, taps = s.KernelH * s.KernelW;
        int row = index / positions, col = index - row * positions;
        int c = row / taps, tap = row - c * taps;
        int ki = tap / s.KernelW, kj = tap - ki * s.KernelW;
        int oy = col / s.OutWidth, ox = col - oy * s.OutWidth;
        int iy = oy * s.StrideH - s.PadTop + ki, ix = ox * s.StrideW - s.PadLeft + kj;
        cols[index] = iy >= 0 && iy < s.Height && ix >= 0 && ix < s.Width ? x[(c * s.Height + iy) * s.Width + ix] : 0f;
    }

    /// <summary>
    /// The plain twin of im2col + GEMM: y[o, oy, ox] = bias[o] + sum over c, i, j of w[o, c, i, j] x[c, oy sh - pt + i,
    /// ox sw - pl + j], the taps summed in the weight's order with fused multiply-adds, one thread per output.
    /// </summary>
    public static void ConvDirect(Index1D index, ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y, ConvShape s)
    {
        int positions = s.OutHeight * s.OutWidth;
        int o = index / positions, col = index - o * positions;
        int oy = col / s.OutWidth, ox = col - oy * s.OutWidth;
        int patch = s.InChannels * s.KernelH * s.KernelW;
        float sum = 0f;
        for (int c = 0; c < s.InChannels; c++)
        for (int i = 0; i < s.KernelH; i++)
        {
            int iy = oy * s.StrideH - s.PadTop + i;
            if (iy < 0 || iy >= s.Height) continue;
            for (int j = 0; j < s.KernelW; j++)
            {
                int ix = ox * s.StrideW - s.PadLeft + j;
                if (ix < 0 || ix >= s.Width) continue;
                sum = MathF.FusedMultiplyAdd(weight[o * patch + (c * s.KernelH + i) * s.KernelW + j], x[(c * s.Height + iy) * s.Width + ix], sum);
            }
        }
        y[index] = sum + bias[o];
    }

    /// <summary>y (C, n): every element of row c set to bias[c] (the convolution's bias, before its product is added).</summary>
    public static void ChannelRows(Index1D index, ArrayView<float> bias, ArrayView<float> y, int n) => y[index] = bias[index / n];

    /// <summary>y = x + bias[c] over (C, n): the mid attention's residual with the output projection's bias.</summary>
    public static void AddChannelBias(Index1D index, ArrayView<float> x, ArrayView<float> bias, ArrayView<float> y, int n) =>
        y[index] = x[index] + bias[index / n];

    /// <summary>
    /// GroupNorm's statistics of group g of x (C, spatial), the group's perGroup channels contiguous (n = perGroup spatial
    /// values): stats[2g] = mean, stats[2g + 1] = 1 / sqrt(var + eps), both from float64 sums as Nn.GroupNorm's.
    /// </summary>
    public static void GroupStats(Index1D group, ArrayView<float> x, ArrayView<float> stats, int n, float eps)
    {
        long offset = (long)(int)group * n;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += x[offset + i];
        float mean = (float)(sum / n);
        double squares = 0;
        for (int i = 0; i < n; i++)
        {
            float d = x[offset + i] - mean;
            squares += d * d;
        }
        int g = group;
        stats[2 * g] = mean;
        stats[2 * g + 1] = (float)(1.0 / Math.Sqrt(squares / n + eps));
    }

    /// <summary>
    /// y = (x - mean) (rstd gamma[c]) + beta[c] over (C, spatial), then y sigmoid(y) when <paramref name="silu"/> is 1,
    /// in Nn.GroupNorm's order (y may be x).
    /// </summary>
    public static void GroupNormApply(Index1D index, ArrayView<float> x, ArrayView<float> stats, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> y, int spatial, int perGroup, int silu)
    {
        int c = index / spatial, g = c / perGroup;
        float v = (x[index] - stats[2 * g]) * (stats[2 * g + 1] * gamma[c]) + beta[c];
        y[index] = silu != 0 ? v * (1f / (1f + Kernels.DeviceMath.Exp(-v))) : v;
    }

    /// <summary>y (C, 2h, 2w) = x (C, h, w) repeated 2 x 2 (nearest neighbour), one thread per output.</summary>
    public static void NearestUpsample2x(Index1D index, ArrayView<float> x, ArrayView<float> y, int height, int width)
    {
        int ow = 2 * width, plane = 4 * height * width;
        int c = index / plane, rest = index - c * plane;
        int oy = rest / ow, ox = rest - oy * ow;
        y[index] = x[(c * height + oy / 2) * width + ox / 2];
    }
}
