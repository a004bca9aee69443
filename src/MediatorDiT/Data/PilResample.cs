namespace MediatorDiT.Data;

/// <summary>
/// Resizes 8-bit images exactly as Pillow's <c>Image.resize</c> does for BOX and BICUBIC, the two
/// filters of ADM/DiT's <c>center_crop_arr</c>, so an image folder gives the same training pixels
/// as the reference pipeline. Pillow's algorithm: separable passes (horizontal first, rounded to
/// uint8 in between), each output pixel a weighted sum over the input pixels within the filter's
/// support stretched by the downscale factor (antialiasing), weights normalised to sum 1 and then
/// held in fixed point with 22 fraction bits; bicubic uses a = -0.5.
/// </summary>
internal static class PilResample
{
    public enum Filter
    {
        Box,
        Bicubic,
    }

    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>
    /// Resizes an interleaved (H, W, channels) uint8 image to (outHeight, outWidth, channels).
    /// A size that does not change skips that pass, as in Pillow.
    /// </summary>
    public static byte[] Resize(ReadOnlySpan<byte> image, int width, int height, int channels, int outWidth, int outHeight, Filter filter)
    {
        if (width <= 0 || height <= 0 || outWidth <= 0 || outHeight <= 0) throw new ArgumentException("image sizes must be positive.");
        if (image.Length != width * height * channels) throw new ArgumentException("the image buffer does not match its size.");
        byte[] current = image.ToArray();
        if (outWidth != width)
        {
            current = Horizontal(current, width, height, channels, outWidth, filter);
            width = outWidth;
        }
        if (outHeight != height)
            current = Vertical(current, width, height, channels, outHeight, filter);
        return current;
    }

    private static byte[] Horizontal(byte[] input, int width, int height, int channels, int outWidth, Filter filter)
    {
        var (bounds, weights, kernelSize) = Coefficients(width, outWidth, filter);
        var output = new byte[outWidth * height * channels];
        for (int y = 0; y < height; y++)
        {
            int row = y * width * channels, outRow = y * outWidth * channels;
            for (int x = 0; x < outWidth; x++)
            {
                int first = bounds[2 * x], count = bounds[2 * x + 1];
                ReadOnlySpan<int> k = weights.AsSpan(x * kernelSize, count);
                for (int c = 0; c < channels; c++)
                {
                    int sum = 1 << (PrecisionBits - 1);
                    for (int i = 0; i < count; i++) sum += input[row + (first + i) * channels + c] * k[i];
                    output[outRow + x * channels + c] = Clip(sum);
                }
            }
        }
        return output;
    }

    private static byte[] Vertical(byte[] input, int width, int height, int channels, int outHeight, Filter filter)
    {
        var (bounds, weights, kernelSize) = Coefficients(height, outHeight, filter);
        int stride = width * channels;
        var output = new byte[outHeight * stride];
        for (int y = 0; y < outHeight; y++)
        {
            int first = bounds[2 * y], count = bounds[2 * y + 1];
            ReadOnlySpan<int> k = weights.AsSpan(y * kernelSize, count);
            for (int j = 0; j < stride; j++)
            {
                int sum = 1 << (PrecisionBits - 1);
                for (int i = 0; i < count; i++) sum += input[(first + i) * stride + j] * k[i];
                output[y * stride + j] = Clip(sum);
            }
        }
        return output;
    }

    /// <summary>
    /// Per output index: the first input index and how many inputs it reads (bounds), and their
    /// fixed-point weights (kernelSize slots per output).
    /// </summary>
    private static (int[] Bounds, int[] Weights, int KernelSize) Coefficients(int inSize, int outSize, Filter filter)
    {
        double support = filter == Filter.Box ? 0.5 : 2.0;
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        support *= filterScale;
        int kernelSize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[2 * outSize];
        var weights = new int[outSize * kernelSize];
        var k = new double[kernelSize];
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
            double inverse = 1.0 / filterScale;
            int min = Math.Max((int)(center - support + 0.5), 0);
            int max = Math.Min((int)(center + support + 0.5), inSize) - min;
            double total = 0;
            for (int i = 0; i < max; i++)
            {
                double w = Evaluate(filter, (i + min - center + 0.5) * inverse);
                k[i] = w;
                total += w;
            }
            for (int i = 0; i < max; i++)
            {
                double normalised = total != 0 ? k[i] / total : k[i];
                double scaled = normalised * (1 << PrecisionBits);
                weights[o * kernelSize + i] = (int)(normalised < 0 ? scaled - 0.5 : scaled + 0.5);
            }
            bounds[2 * o] = min;
            bounds[2 * o + 1] = max;
        }
        return (bounds, weights, kernelSize);
    }

    private static double Evaluate(Filter filter, double x)
    {
        if (filter == Filter.Box) return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
        const double a = -0.5;
        if (x < 0) x = -x;
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    private static byte Clip(int value)
    {
        if (value >= 256 << PrecisionBits) return 255;
        if (value <= 0) return 0;
        return (byte)(value >> PrecisionBits);
    }
}
