using SkiaSharp;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// JPEG and WebP files made in the test with SkiaSharp's encoders, from interleaved 8-bit pixels (1 grey,
/// 3 RGB or 4 RGBA channels), so the tests need no binary files beyond the Pillow vectors in Data/jpeg.
/// </summary>
public static class SkiaTestImages
{
    public static byte[] Jpeg(byte[] pixels, int width, int height, int channels, int quality = 90, bool subsample = true) =>
        Encode(pixels, width, height, channels, pixmap => pixmap.Encode(new SKJpegEncoderOptions(quality,
            subsample ? SKJpegEncoderDownsample.Downsample420 : SKJpegEncoderDownsample.Downsample444, SKJpegEncoderAlphaOption.Ignore)));

    public static byte[] WebP(byte[] pixels, int width, int height, int channels, bool lossless, int quality = 90) =>
        Encode(pixels, width, height, channels, pixmap => pixmap.Encode(new SKWebpEncoderOptions(
            lossless ? SKWebpEncoderCompression.Lossless : SKWebpEncoderCompression.Lossy, quality)));

    /// <summary>A smooth RGB pattern (what JPEG keeps well): gradients folded into triangles, a different phase per channel.</summary>
    public static byte[] Smooth(int width, int height, int channels)
    {
        var pixels = new byte[width * height * channels];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < channels; c++)
                {
                    int v = (x * 4 + y * 5 + c * 50) % 256;
                    pixels[(y * width + x) * channels + c] = c == 3 ? (byte)((x * 7 + y * 9) % 256) : (byte)(v < 128 ? 2 * v : 2 * (255 - v));
                }
        return pixels;
    }

    private static byte[] Encode(byte[] pixels, int width, int height, int channels, Func<SKPixmap, SKData?> encode)
    {
        byte[] stored = pixels;
        if (channels == 3)
        {
            stored = new byte[width * height * 4];
            for (int i = 0; i < width * height; i++)
            {
                stored[4 * i] = pixels[3 * i];
                stored[4 * i + 1] = pixels[3 * i + 1];
                stored[4 * i + 2] = pixels[3 * i + 2];
                stored[4 * i + 3] = 255;
            }
        }
        var info = new SKImageInfo(width, height, channels == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888,
            channels == 4 ? SKAlphaType.Unpremul : SKAlphaType.Opaque);
        unsafe
        {
            fixed (byte* p = stored)
            {
                using var pixmap = new SKPixmap(info, (IntPtr)p, width * (channels == 1 ? 1 : 4));
                using SKData data = encode(pixmap) ?? throw new InvalidOperationException("SkiaSharp did not encode the test image.");
                return data.ToArray();
            }
        }
    }

    /// <summary>The byte offset of the first SOFn marker (baseline, extended or progressive) of a JPEG.</summary>
    public static int StartOfFrame(byte[] jpeg)
    {
        for (int i = 2; i + 1 < jpeg.Length; i++)
            if (jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC1 or 0xC2) return i;
        throw new InvalidOperationException("the JPEG has no SOF marker.");
    }

    /// <summary>A JPEG whose frame header claims <paramref name="width"/> x <paramref name="height"/> (at most 65,535 each).</summary>
    public static byte[] WithJpegSize(byte[] jpeg, int width, int height)
    {
        byte[] patched = (byte[])jpeg.Clone();
        int sof = StartOfFrame(patched);
        // SOFn: marker (2), length (2), precision (1), height (2), width (2), big-endian.
        patched[sof + 5] = (byte)(height >> 8); patched[sof + 6] = (byte)height;
        patched[sof + 7] = (byte)(width >> 8); patched[sof + 8] = (byte)width;
        return patched;
    }
}
