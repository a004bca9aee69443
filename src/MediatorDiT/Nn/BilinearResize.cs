namespace MediatorDiT.Nn;

/// <summary>
/// F.interpolate(mode='bilinear', align_corners=False, antialias=False) on planes: x (P, H, W) -> y (P, OH, OW).
/// Used to bring the 7x7 mediator position biases to the token grid, up or down.
/// Source coordinate: max(0, (dst + 0.5) * in/out - 0.5), as PyTorch computes it in float32.
/// </summary>
internal static class BilinearResize
{
    /// <summary>For each output index: the two source indices and their weights.</summary>
    public readonly record struct Tap(int I0, int I1, float W0, float W1);

    public static Tap[] Taps(int inSize, int outSize)
    {
        var taps = new Tap[outSize];
        float scale = (float)inSize / outSize;
        for (int d = 0; d < outSize; d++)
        {
            float src = Math.Max(scale * (d + 0.5f) - 0.5f, 0f);
            int i0 = (int)src;
            int i1 = i0 + (i0 < inSize - 1 ? 1 : 0);
            float l1 = src - i0;
            taps[d] = new Tap(i0, i1, 1f - l1, l1);
        }
        return taps;
    }

    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int planes, int h, int w, int oh, int ow)
    {
        var th = Taps(h, oh);
        var tw = Taps(w, ow);
        for (int p = 0; p < planes; p++)
        {
            var xp = x.Slice(p * h * w, h * w);
            var yp = y.Slice(p * oh * ow, oh * ow);
            for (int i = 0; i < oh; i++)
            {
                var a = th[i];
                for (int j = 0; j < ow; j++)
                {
                    var b = tw[j];
                    yp[i * ow + j] =
                        a.W0 * (b.W0 * xp[a.I0 * w + b.I0] + b.W1 * xp[a.I0 * w + b.I1]) +
                        a.W1 * (b.W0 * xp[a.I1 * w + b.I0] + b.W1 * xp[a.I1 * w + b.I1]);
                }
            }
        }
    }

    /// <summary>Accumulates dx += the resize's transpose applied to dy.</summary>
    public static void BackwardAccumulate(ReadOnlySpan<float> dy, Span<float> dx, int planes, int h, int w, int oh, int ow)
    {
        var th = Taps(h, oh);
        var tw = Taps(w, ow);
        for (int p = 0; p < planes; p++)
        {
            var dxp = dx.Slice(p * h * w, h * w);
            var dyp = dy.Slice(p * oh * ow, oh * ow);
            for (int i = 0; i < oh; i++)
            {
                var a = th[i];
                for (int j = 0; j < ow; j++)
                {
                    var b = tw[j];
                    float g = dyp[i * ow + j];
                    dxp[a.I0 * w + b.I0] += a.W0 * b.W0 * g;
                    dxp[a.I0 * w + b.I1] += a.W0 * b.W1 * g;
                    dxp[a.I1 * w + b.I0] += a.W1 * b.W0 * g;
                    dxp[a.I1 * w + b.I1] += a.W1 * b.W1 * g;
                }
            }
        }
    }
}
