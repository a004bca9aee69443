using System.Buffers.Binary;
using SkiaSharp;

namespace MediatorDiT.IO;

/// <summary>
/// JPEG and WebP through SkiaSharp's SKCodec (Skia's builds of libjpeg-turbo and libwebp), into
/// <see cref="DecodedImage"/>. The codec is asked for 8-bit grey or RGBA with
/// no colour space, so no ICC profile or colour transform is applied, and for unpremultiplied alpha;
/// SKCodec.GetPixels does not rotate by the EXIF orientation. Only the header is parsed before the pixel
/// limit is checked.
/// </summary>
internal static class CodecImageDecoder
{
    public static DecodedImage Decode(ReadOnlySpan<byte> bytes, ImageFormat format, string source, InputLimits limits)
    {
        string name = format == ImageFormat.Jpeg ? "JPEG" : "WebP";
        using SKData data = Copy(bytes, source);
        bool cut = IsCutShort(bytes, format);
        using SKCodec codec = Open(data, name, source, cut);
        if (codec.EncodedFormat != (format == ImageFormat.Jpeg ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Webp))
            throw new MediatorDiTException($"{source}: starts like a {name} file but the decoder reads it as {codec.EncodedFormat} (the file is corrupt).");

        SKImageInfo info = codec.Info;
        int width = info.Width, height = info.Height;
        if (width < 1 || height < 1)
            throw new MediatorDiTException($"{source}: declares a {width} x {height} image (the file is corrupt).");
        if ((long)width * height > limits.MaxImagePixels)
            throw limits.ImageTooLarge(source, width, height);

        bool grey = info.ColorType == SKColorType.Gray8;
        bool alpha = !grey && info.AlphaType != SKAlphaType.Opaque;
        int decodedChannels = grey ? 1 : 4;
        long decodedBytes = (long)width * height * decodedChannels;
        if (decodedBytes > Array.MaxLength)
            throw new MediatorDiTException($"{source}: a {width} x {height} image is too large to decode into one array.");
        // A null colour space: Skia then leaves the stored values as they are (Pillow applies no profile either).
        var target = new SKImageInfo(width, height, grey ? SKColorType.Gray8 : SKColorType.Rgba8888,
            grey || !alpha ? SKAlphaType.Opaque : SKAlphaType.Unpremul, null);
        var decoded = new byte[decodedBytes];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* pixels = decoded)
                result = codec.GetPixels(target, (IntPtr)pixels, width * decodedChannels, SKCodecOptions.Default);
        }
        if (result != SKCodecResult.Success)
            throw new MediatorDiTException($"{source}: the {name} image data {Problem(result, cut)}.");

        if (grey || alpha) return new DecodedImage(width, height, decodedChannels, decoded);
        var rgb = new byte[(long)width * height * 3];
        long n = (long)width * height;
        for (long i = 0; i < n; i++)
        {
            rgb[3 * i] = decoded[4 * i];
            rgb[3 * i + 1] = decoded[4 * i + 1];
            rgb[3 * i + 2] = decoded[4 * i + 2];
        }
        return new DecodedImage(width, height, 3, rgb);
    }

    /// <summary>A native copy of the bytes: the codec then reads without calling back into managed code.</summary>
    private static SKData Copy(ReadOnlySpan<byte> bytes, string source)
    {
        try
        {
            return SKData.CreateCopy(bytes);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException or TypeInitializationException)
        {
            throw new MediatorDiTException(
                $"{source}: cannot be decoded because SkiaSharp's native library did not load ({FirstSentence(ex.GetBaseException().Message)}); " +
                "it comes with the SkiaSharp.NativeAssets packages for this platform.", ex);
        }
    }

    private static string FirstSentence(string message)
    {
        string line = message.Split('\n')[0].Trim();
        int end = line.IndexOf(". ", StringComparison.Ordinal);
        return (end > 0 ? line[..end] : line).TrimEnd('.', ':');
    }

    private static SKCodec Open(SKData data, string name, string source, bool cut)
    {
        // The codec owns the stream (or deletes it at once when the header is refused); the stream holds a reference to the data.
        SKCodec? codec = SKCodec.Create(new SKMemoryStream(data), out SKCodecResult result);
        return codec ?? throw new MediatorDiTException($"{source}: is not a readable {name} file: its header {Problem(result, cut)}.");
    }

    /// <summary>
    /// Whether a WebP file is shorter than its RIFF header says (libwebp reports a cut-off stream as invalid
    /// rather than incomplete); JPEG has no such length, and libjpeg-turbo reports the end itself.
    /// </summary>
    private static bool IsCutShort(ReadOnlySpan<byte> bytes, ImageFormat format) =>
        format == ImageFormat.WebP && bytes.Length >= 8 && 8L + BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]) > bytes.Length;

    /// <summary>What a codec result says about the file, as the end of a sentence.</summary>
    private static string Problem(SKCodecResult result, bool cut) => result switch
    {
        _ when cut || result == SKCodecResult.IncompleteInput => "ends early (the file is truncated)",
        SKCodecResult.ErrorInInput or SKCodecResult.InvalidInput => "is corrupt",
        SKCodecResult.Unimplemented => "uses a feature the decoder does not support",
        _ => $"cannot be decoded (the decoder reports {result})",
    };
}
