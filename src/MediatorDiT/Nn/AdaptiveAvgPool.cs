using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Nn;

/// <summary>
/// nn.AdaptiveAvgPool2d on a channel-last grid: x (H, W, C) -> y (OH, OW, C). Bin i covers rows
/// floor(i*H/OH) .. ceil((i+1)*H/OH) - 1, as PyTorch computes them (bins may overlap when H % OH != 0).
/// Grid rows of x sit <c>xStride</c> floats apart so q can be pooled in place inside the qkv buffer.
/// </summary>
internal static class AdaptiveAvgPool
{
    public static (int Start, int End) Bin(int i, int inSize, int outSize) =>
        (i * inSize / outSize, ((i + 1) * inSize + outSize - 1) / outSize);

    public static void Forward(ReadOnlySpan<float> x, int xStride, Span<float> y, int h, int w, int c, int oh, int ow)
        => Forward(x, xStride, y, c, h, w, c, oh, ow);

    /// <summary>As above with output rows <paramref name="yStride"/> floats apart (one head's channels of T).</summary>
    public static void Forward(ReadOnlySpan<float> x, int xStride, Span<float> y, int yStride, int h, int w, int c, int oh, int ow)
    {
        for (int i = 0; i < oh; i++)
        {
            var (h0, h1) = Bin(i, h, oh);
            for (int j = 0; j < ow; j++)
            {
                var (w0, w1) = Bin(j, w, ow);
                var yr = y.Slice((i * ow + j) * yStride, c);
                yr.Clear();
                for (int a = h0; a < h1; a++)
                for (int b = w0; b < w1; b++)
                    TensorPrimitives.Add(yr, x.Slice((a * w + b) * xStride, c), yr);
                TensorPrimitives.Multiply(yr, 1f / ((h1 - h0) * (w1 - w0)), yr);
            }
        }
    }

    /// <summary>Accumulates dx += the pooling's transpose applied to dy.</summary>
    public static void BackwardAccumulate(ReadOnlySpan<float> dy, Span<float> dx, int dxStride, int h, int w, int c, int oh, int ow)
        => BackwardAccumulate(dy, c, dx, dxStride, h, w, c, oh, ow);

    /// <summary>As above with dy rows <paramref name="dyStride"/> floats apart.</summary>
    public static void BackwardAccumulate(ReadOnlySpan<float> dy, int dyStride, Span<float> dx, int dxStride, int h, int w, int c, int oh, int ow)
    {
        for (int i = 0; i < oh; i++)
        {
            var (h0, h1) = Bin(i, h, oh);
            for (int j = 0; j < ow; j++)
            {
                var (w0, w1) = Bin(j, w, ow);
                float inv = 1f / ((h1 - h0) * (w1 - w0));
                var dyr = dy.Slice((i * ow + j) * dyStride, c);
                for (int a = h0; a < h1; a++)
                for (int b = w0; b < w1; b++)
                {
                    var dxr = dx.Slice((a * w + b) * dxStride, c);
                    TensorPrimitives.MultiplyAdd(dyr, inv, dxr, dxr);
                }
            }
        }
    }
}
