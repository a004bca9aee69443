namespace MediatorDiT.IO;

/// <summary>
/// An 8-bit image in memory: <see cref="Pixels"/> holds Height x Width x Channels bytes, row-major
/// (HWC), with 1 (grey), 3 (RGB) or 4 (RGBA) channels. <see cref="ImageFile"/> and <see cref="PngDecoder"/> return one, and
/// <see cref="PngEncoder"/> and the image grid take and give the same layout.
/// </summary>
public sealed class DecodedImage
{
    /// <summary>Columns, at least 1.</summary>
    public int Width { get; }
    /// <summary>Rows, at least 1.</summary>
    public int Height { get; }
    /// <summary>1 (grey), 3 (RGB) or 4 (RGBA).</summary>
    public int Channels { get; }
    /// <summary>Height x Width x Channels bytes, row-major (HWC); not copied from the constructor's array.</summary>
    public byte[] Pixels { get; }

    /// <summary>Wraps <paramref name="pixels"/> (HWC bytes) without copying.</summary>
    /// <param name="width">Columns, at least 1.</param>
    /// <param name="height">Rows, at least 1.</param>
    /// <param name="channels">1, 3 or 4.</param>
    /// <param name="pixels">Exactly width x height x channels bytes.</param>
    /// <exception cref="MediatorDiTException">A size is out of range or the byte count does not match.</exception>
    public DecodedImage(int width, int height, int channels, byte[] pixels)
    {
        if (width < 1 || height < 1)
            throw new MediatorDiTException($"an image must be at least 1 x 1 pixels, not {width} x {height}.");
        if (channels is not (1 or 3 or 4))
            throw new MediatorDiTException($"an image has 1 (grey), 3 (RGB) or 4 (RGBA) channels, not {channels}.");
        if (pixels.LongLength != (long)width * height * channels)
            throw new MediatorDiTException($"a {width} x {height} image with {channels} channels needs {(long)width * height * channels} bytes, but {pixels.LongLength} were given.");
        Width = width;
        Height = height;
        Channels = channels;
        Pixels = pixels;
    }

    /// <summary>True for RGBA (4 channels).</summary>
    public bool HasAlpha => Channels == 4;

    /// <summary>The byte of <paramref name="channel"/> at column <paramref name="x"/>, row <paramref name="y"/>.</summary>
    public byte At(int x, int y, int channel) => Pixels[((long)y * Width + x) * Channels + channel];

    /// <summary>
    /// One channel of luma, as Pillow's convert("L") computes it: (19595 R + 38470 G + 7471 B + 2^15) >> 16
    /// (ITU-R 601 weights). Alpha is dropped, not blended. Returns this image when it already is grey.
    /// </summary>
    public DecodedImage ToGrey()
    {
        if (Channels == 1) return this;
        long n = (long)Width * Height;
        var grey = Allocate(n, 1);
        byte[] src = Pixels;
        int c = Channels;
        for (long i = 0; i < n; i++)
        {
            long s = i * c;
            grey[i] = (byte)((src[s] * 19595 + src[s + 1] * 38470 + src[s + 2] * 7471 + 0x8000) >> 16);
        }
        return new DecodedImage(Width, Height, 1, grey);
    }

    /// <summary>
    /// Three channels: grey is repeated, alpha is dropped (not blended), as Pillow's convert("RGB") does.
    /// Returns this image when it already is RGB.
    /// </summary>
    public DecodedImage ToRgb()
    {
        if (Channels == 3) return this;
        long n = (long)Width * Height;
        var rgb = Allocate(n, 3);
        byte[] src = Pixels;
        for (long i = 0; i < n; i++)
        {
            if (Channels == 1)
            {
                byte g = src[i];
                rgb[3 * i] = g; rgb[3 * i + 1] = g; rgb[3 * i + 2] = g;
            }
            else
            {
                rgb[3 * i] = src[4 * i]; rgb[3 * i + 1] = src[4 * i + 1]; rgb[3 * i + 2] = src[4 * i + 2];
            }
        }
        return new DecodedImage(Width, Height, 3, rgb);
    }

    /// <summary>Four channels; images without alpha become fully opaque. Returns this image when it already is RGBA.</summary>
    public DecodedImage ToRgba()
    {
        if (Channels == 4) return this;
        long n = (long)Width * Height;
        var rgba = Allocate(n, 4);
        byte[] src = Pixels;
        for (long i = 0; i < n; i++)
        {
            if (Channels == 1)
            {
                byte g = src[i];
                rgba[4 * i] = g; rgba[4 * i + 1] = g; rgba[4 * i + 2] = g;
            }
            else
            {
                rgba[4 * i] = src[3 * i]; rgba[4 * i + 1] = src[3 * i + 1]; rgba[4 * i + 2] = src[3 * i + 2];
            }
            rgba[4 * i + 3] = 255;
        }
        return new DecodedImage(Width, Height, 4, rgba);
    }

    /// <summary>A buffer of <paramref name="pixels"/> x <paramref name="channels"/> bytes, refused in one sentence when no array can hold it.</summary>
    private byte[] Allocate(long pixels, int channels)
    {
        if (pixels * channels > Array.MaxLength)
            throw new MediatorDiTException($"a {Width} x {Height} image with {channels} channels needs {pixels * channels} bytes, more than one array can hold.");
        return new byte[pixels * channels];
    }

    /// <summary>The size, e.g. "28x28x1 image".</summary>
    public override string ToString() => $"{Width}x{Height}x{Channels} image";
}
