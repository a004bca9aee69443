namespace MediatorDiT.Nn;

/// <summary>
/// F.interpolate(scale_factor=2, mode="nearest") on planes: x (planes, H, W) -> y (planes, 2H, 2W),
/// y[p, i, j] = x[p, i / 2, j / 2]. Each output row pair is one widened input row written twice.
/// </summary>
internal static class NearestUpsample2x
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int planes, int height, int width)
    {
        int ow = 2 * width;
        if (x.Length < planes * height * width || y.Length < planes * 4 * height * width)
            throw new ArgumentException($"NearestUpsample2x: buffers do not fit ({planes}, {height}, {width}).");
        for (int p = 0; p < planes; p++)
        for (int i = 0; i < height; i++)
        {
            var src = x.Slice((p * height + i) * width, width);
            var top = y.Slice((p * 2 * height + 2 * i) * ow, ow);
            for (int j = 0; j < width; j++)
            {
                float v = src[j];
                top[2 * j] = v;
                top[2 * j + 1] = v;
            }
            top.CopyTo(y.Slice((p * 2 * height + 2 * i + 1) * ow, ow));
        }
    }
}

/// <summary>The index-by-index definition that <see cref="NearestUpsample2x"/> is tested against.</summary>
internal static class ReferenceNearestUpsample2x
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int planes, int height, int width)
    {
        for (int p = 0; p < planes; p++)
        for (int i = 0; i < 2 * height; i++)
        for (int j = 0; j < 2 * width; j++)
            y[(p * 2 * height + i) * 2 * width + j] = x[(p * height + i / 2) * width + j / 2];
    }
}
