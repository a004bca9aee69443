namespace MediatorDiT.Data;

/// <summary>
/// ADM/DiT's <c>center_crop_arr</c>: while the short side is at least twice the target, halve the
/// image (each side floor(s / 2)) with a BOX filter; then resize with BICUBIC so the short side is
/// the target (each side round-half-even(s * target / short side)); then cut the centred
/// target x target square (offsets floor((s - target) / 2)). Pixels are Pillow's, bit for bit.
/// </summary>
public static class CenterCrop
{
    /// <summary>
    /// Crops an interleaved (H, W, channels) uint8 image to (size, size, channels).
    /// </summary>
    public static byte[] Apply(ReadOnlySpan<byte> image, int width, int height, int channels, int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        byte[] current = image.ToArray();
        while (Math.Min(width, height) >= 2 * size)
        {
            current = PilResample.Resize(current, width, height, channels, width / 2, height / 2, PilResample.Filter.Box);
            width /= 2;
            height /= 2;
        }
        double scale = (double)size / Math.Min(width, height);
        int newWidth = (int)Math.Round(width * scale, MidpointRounding.ToEven);
        int newHeight = (int)Math.Round(height * scale, MidpointRounding.ToEven);
        if (newWidth != width || newHeight != height)
            current = PilResample.Resize(current, width, height, channels, newWidth, newHeight, PilResample.Filter.Bicubic);

        int top = (newHeight - size) / 2, left = (newWidth - size) / 2;
        var output = new byte[size * size * channels];
        for (int y = 0; y < size; y++)
            current.AsSpan(((top + y) * newWidth + left) * channels, size * channels).CopyTo(output.AsSpan(y * size * channels));
        return output;
    }
}
