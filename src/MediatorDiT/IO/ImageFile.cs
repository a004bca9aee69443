namespace MediatorDiT.IO;

/// <summary>The image formats <see cref="ImageFile"/> reads.</summary>
public enum ImageFormat
{
    /// <summary>PNG, decoded by <see cref="PngDecoder"/>.</summary>
    Png,
    /// <summary>JPEG, decoded by libjpeg-turbo.</summary>
    Jpeg,
    /// <summary>WebP (lossy or lossless), decoded by libwebp.</summary>
    WebP,
}

/// <summary>
/// Reads an image file whatever its format, told from its first bytes (not its name, as Pillow does):
/// PNG through <see cref="PngDecoder"/>, JPEG and WebP through SkiaSharp's codecs (libjpeg-turbo and
/// libwebp). Every format gives the same 8-bit <see cref="DecodedImage"/>: grey JPEGs 1 channel, colour
/// JPEGs (YCbCr, RGB, CMYK, YCCK) 3, WebP 3 or, with an alpha channel, 4 (unpremultiplied). Pixels are
/// as stored: no colour profile is applied and the EXIF orientation is ignored, as Pillow's
/// <c>Image.open</c> + <c>convert("RGB")</c> leave them; an animated WebP gives its first frame. The
/// header's width x height is checked against <see cref="InputLimits.MaxImagePixels"/> before any
/// image data is decoded. A file that is not a PNG, JPEG or WebP, or that is truncated or corrupt,
/// fails with one sentence naming it.
/// </summary>
public static class ImageFile
{
    /// <summary>File name endings listed as images in folders (compared ignoring case).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg", ".webp"];

    /// <summary>The extensions as users read them in messages.</summary>
    public const string ExtensionList = ".png, .jpg, .jpeg or .webp";

    /// <summary>Whether the file name ends in one of <see cref="Extensions"/>, in any letter case (ImageNet's are <c>.JPEG</c>).</summary>
    public static bool HasImageExtension(string path)
    {
        foreach (string extension in Extensions)
            if (path.EndsWith(extension, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>
    /// The format whose signature <paramref name="head"/> (the file's first bytes, 12 suffice) starts with,
    /// or null. A head shorter than a signature but agreeing with it counts, so that a truncated file is
    /// reported as truncated by its own decoder.
    /// </summary>
    public static ImageFormat? Sniff(ReadOnlySpan<byte> head)
    {
        if (head.IsEmpty) return null;
        if (head[..Math.Min(head.Length, 8)].SequenceEqual(PngChunk.Signature[..Math.Min(head.Length, 8)])) return ImageFormat.Png;
        // SOI followed by a marker; Pillow checks the same three bytes.
        ReadOnlySpan<byte> soi = [0xFF, 0xD8, 0xFF];
        if (head[..Math.Min(head.Length, 3)].SequenceEqual(soi[..Math.Min(head.Length, 3)])) return ImageFormat.Jpeg;
        // A RIFF container (4-byte little-endian size in between) of type WEBP.
        if (head.Length >= 4 && head[..4].SequenceEqual("RIFF"u8) && (head.Length < 12 || head[8..12].SequenceEqual("WEBP"u8))) return ImageFormat.WebP;
        return null;
    }

    /// <summary>Decodes the image file at <paramref name="path"/>, its format told from its first bytes.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">bounds on the declared size; <see cref="InputLimits.Default"/> when null</param>
    /// <exception cref="MediatorDiTException">The file cannot be read, is no PNG, JPEG or WebP, is corrupt or exceeds the limits.</exception>
    public static DecodedImage Read(string path, InputLimits? limits = null)
    {
        limits ??= InputLimits.Default;
        using FileStream stream = InputFile.OpenStream(path);
        Span<byte> head = stackalloc byte[12];
        int got = ReadUpTo(stream, head, path);
        ImageFormat format = FormatOf(head[..got], path);
        if (format == ImageFormat.Png)
        {
            stream.Position = 0;
            return PngDecoder.Decode(stream, path, limits);
        }
        long length = InputFile.Guard(path, () => stream.Length);
        if (length > Array.MaxLength)
            throw new MediatorDiTException($"{path}: holds {length} bytes, more than one array can hold, so it cannot be decoded.");
        var bytes = new byte[length];
        head[..got].CopyTo(bytes);
        int rest = ReadUpTo(stream, bytes.AsSpan(got), path);
        return CodecImageDecoder.Decode(bytes.AsSpan(0, got + rest), format, path, limits);
    }

    /// <summary>Decodes the bytes of a PNG, JPEG or WebP file; <paramref name="sourceName"/> names them in error messages.</summary>
    public static DecodedImage Decode(byte[] bytes, string sourceName, InputLimits? limits = null)
    {
        limits ??= InputLimits.Default;
        ImageFormat format = FormatOf(bytes.AsSpan(0, Math.Min(bytes.Length, 12)), sourceName);
        return format == ImageFormat.Png
            ? PngDecoder.Decode(bytes, sourceName, limits)
            : CodecImageDecoder.Decode(bytes, format, sourceName, limits);
    }

    private static ImageFormat FormatOf(ReadOnlySpan<byte> head, string source)
    {
        if (head.IsEmpty)
            throw new MediatorDiTException($"{source}: is empty, not an image file.");
        return Sniff(head) ?? throw new MediatorDiTException(
            $"{source}: is not a PNG, JPEG or WebP image (it starts with the bytes {Convert.ToHexString(head[..Math.Min(head.Length, 8)])}), or it is corrupt.");
    }

    private static int ReadUpTo(Stream stream, Span<byte> buffer, string path)
    {
        try
        {
            return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (IOException ex)
        {
            throw new MediatorDiTException($"{path}: cannot be read ({ex.Message.TrimEnd('.')}).", ex);
        }
    }
}
