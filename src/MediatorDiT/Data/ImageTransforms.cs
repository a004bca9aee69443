namespace MediatorDiT.Data;

/// <summary>Small per-sample image operations shared by the datasets and the loader.</summary>
internal static class ImageTransforms
{
    /// <summary>The 256 values of <see cref="ImageConversion.ToFloat"/>, looked up per pixel.</summary>
    private static readonly float[] SignedTable = Enumerable.Range(0, 256).Select(v => ImageConversion.ToFloat((byte)v)).ToArray();

    /// <summary>
    /// uint8 to [-1, 1] as torchvision's ToTensor and Normalize(0.5, 0.5) compute it in float32,
    /// (v / 255 - 0.5) / 0.5 (<see cref="ImageConversion.ToFloat"/>): 0 is -1 (black), 255 is 1.
    /// </summary>
    public static void BytesToSigned(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (destination.Length != source.Length) throw new ArgumentException("source and destination lengths differ.");
        float[] table = SignedTable;
        for (int i = 0; i < source.Length; i++) destination[i] = table[source[i]];
    }

    /// <summary>Interleaved (H, W, C) bytes to planar (C, H, W) floats in [-1, 1].</summary>
    public static void InterleavedBytesToSignedPlanes(ReadOnlySpan<byte> hwc, Span<float> chw, int channels)
    {
        if (chw.Length != hwc.Length) throw new ArgumentException("source and destination lengths differ.");
        float[] table = SignedTable;
        int plane = hwc.Length / channels;
        for (int p = 0; p < plane; p++)
        {
            for (int c = 0; c < channels; c++) chw[c * plane + p] = table[hwc[p * channels + c]];
        }
    }

    /// <summary>
    /// Copies (H, W) planes into the centre of (outH, outW) planes filled with <paramref name="fill"/>;
    /// top/left margins are (outH - H) / 2 and (outW - W) / 2, rounded down.
    /// </summary>
    public static void PadCentered(ReadOnlySpan<float> source, Span<float> destination, int planes, int height, int width, int outHeight, int outWidth, float fill)
    {
        if (outHeight < height || outWidth < width) throw new ArgumentException("padding cannot shrink an image.");
        destination[..(planes * outHeight * outWidth)].Fill(fill);
        int top = (outHeight - height) / 2, left = (outWidth - width) / 2;
        for (int p = 0; p < planes; p++)
        {
            for (int y = 0; y < height; y++)
            {
                source.Slice((p * height + y) * width, width)
                    .CopyTo(destination.Slice((p * outHeight + top + y) * outWidth + left, width));
            }
        }
    }

    /// <summary>Mirrors each row of (C, H, W) in place (torchvision's RandomHorizontalFlip when it fires).</summary>
    public static void FlipHorizontal(Span<float> sample, SampleShape shape)
    {
        int rows = shape.Channels * shape.Height;
        for (int r = 0; r < rows; r++) sample.Slice(r * shape.Width, shape.Width).Reverse();
    }
}
