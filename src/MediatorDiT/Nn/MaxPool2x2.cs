namespace MediatorDiT.Nn;

/// <summary>
/// nn.MaxPool2d(2) on planes: x (planes, H, W) -> y (planes, H/2, W/2) with H, W even. The forward pass
/// records which input held each maximum (the first one on ties, as PyTorch's CPU kernel), and the
/// backward pass routes each output gradient there. Plain loops: the pooling is memory-bound.
/// </summary>
internal static class MaxPool2x2
{
    /// <summary>y and argmax (index into the plane's H*W pixels) of each 2x2 window.</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, Span<int> argmax, int planes, int height, int width)
    {
        Check(x.Length, y.Length, argmax.Length, planes, height, width);
        int oh = height / 2, ow = width / 2;
        for (int p = 0; p < planes; p++)
        {
            var xp = x.Slice(p * height * width, height * width);
            int o = p * oh * ow;
            for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++, o++)
            {
                int i0 = 2 * oy * width + 2 * ox;
                int best = i0;
                float m = xp[i0];
                // Order (0,0), (0,1), (1,0), (1,1); strict > keeps the first maximum.
                if (xp[i0 + 1] > m) { m = xp[i0 + 1]; best = i0 + 1; }
                if (xp[i0 + width] > m) { m = xp[i0 + width]; best = i0 + width; }
                if (xp[i0 + width + 1] > m) { m = xp[i0 + width + 1]; best = i0 + width + 1; }
                y[o] = m;
                argmax[o] = best;
            }
        }
    }

    /// <summary>dx (planes, H, W) = 0 except dx[argmax] = dy (overwritten).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, Span<float> dx, int planes, int height, int width)
    {
        Check(dx.Length, dy.Length, argmax.Length, planes, height, width);
        int plane = height * width, outPlane = height / 2 * (width / 2);
        dx[..(planes * plane)].Clear();
        for (int p = 0; p < planes; p++)
        {
            var dxp = dx.Slice(p * plane, plane);
            for (int o = 0; o < outPlane; o++) dxp[argmax[p * outPlane + o]] += dy[p * outPlane + o];
        }
    }

    private static void Check(int xLength, int yLength, int argLength, int planes, int height, int width)
    {
        if (height % 2 != 0 || width % 2 != 0)
            throw new ArgumentException($"MaxPool2x2 needs even sizes, not {height}x{width}.");
        int outLength = planes * (height / 2) * (width / 2);
        if (xLength < planes * height * width || yLength < outLength || argLength < outLength)
            throw new ArgumentException($"MaxPool2x2: buffers do not fit {planes}x{height}x{width} (x {xLength}, y {yLength}, argmax {argLength}).");
    }
}
