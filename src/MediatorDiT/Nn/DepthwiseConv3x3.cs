using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Nn;

/// <summary>
/// nn.Conv2d(C, C, 3, padding=1, groups=C) on a channel-last grid: x (H, W, C) -> y (H, W, C).
/// weight (C, 1, 3, 3) as PyTorch stores it, bias (C). Channel-last lets the inner loop run over C.
/// Grid rows of x (and dx) sit <c>xStride</c> floats apart so v can be read in place inside the qkv buffer.
/// </summary>
public static class DepthwiseConv3x3
{
    /// <summary>Reorders weight (C, 1, 3, 3) to taps (9, C) so each tap is a contiguous channel vector.</summary>
    public static void TransposeWeight(ReadOnlySpan<float> weight, Span<float> taps, int c)
    {
        for (int ch = 0; ch < c; ch++)
        for (int t = 0; t < 9; t++)
            taps[t * c + ch] = weight[ch * 9 + t];
    }

    /// <summary>y = conv(x) + bias, or y += conv(x) + bias when <paramref name="accumulate"/>. taps: (9, C).</summary>
    public static void Forward(ReadOnlySpan<float> x, int xStride, ReadOnlySpan<float> taps, ReadOnlySpan<float> bias, Span<float> y,
        int h, int w, int c, bool accumulate)
    {
        for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
        {
            var yr = y.Slice((i * w + j) * c, c);
            if (accumulate) TensorPrimitives.Add(yr, bias, yr);
            else bias.CopyTo(yr);
            for (int di = -1; di <= 1; di++)
            {
                int a = i + di;
                if ((uint)a >= (uint)h) continue;
                for (int dj = -1; dj <= 1; dj++)
                {
                    int b = j + dj;
                    if ((uint)b >= (uint)w) continue;
                    int t = (di + 1) * 3 + (dj + 1);
                    TensorPrimitives.MultiplyAdd(x.Slice((a * w + b) * xStride, c), taps.Slice(t * c, c), yr, yr);
                }
            }
        }
    }

    /// <summary>
    /// Accumulates dx += conv^T(dy), dTaps (9, C) += correlation of dy with x, dBias += sum of dy.
    /// </summary>
    public static void BackwardAccumulate(ReadOnlySpan<float> x, int xStride, ReadOnlySpan<float> taps, ReadOnlySpan<float> dy,
        Span<float> dx, Span<float> dTaps, Span<float> dBias, int h, int w, int c)
    {
        for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
        {
            var g = dy.Slice((i * w + j) * c, c);
            TensorPrimitives.Add(dBias, g, dBias);
            for (int di = -1; di <= 1; di++)
            {
                int a = i + di;
                if ((uint)a >= (uint)h) continue;
                for (int dj = -1; dj <= 1; dj++)
                {
                    int b = j + dj;
                    if ((uint)b >= (uint)w) continue;
                    int t = (di + 1) * 3 + (dj + 1);
                    var xs = x.Slice((a * w + b) * xStride, c);
                    var dxs = dx.Slice((a * w + b) * xStride, c);
                    TensorPrimitives.MultiplyAdd(g, taps.Slice(t * c, c), dxs, dxs);
                    var dt = dTaps.Slice(t * c, c);
                    TensorPrimitives.MultiplyAdd(g, xs, dt, dt);
                }
            }
        }
    }
}
