using System.Globalization;

namespace MediatorDiT.IO;

/// <summary>
/// Upper bounds on what loaders allocate for one input file, checked from headers before anything is
/// inflated or read, so a small hostile file (a decompression bomb, a header claiming 40,000 x 40,000
/// pixels) fails with one sentence instead of exhausting memory. Pass one to
/// <see cref="ImageFile"/> (PNG, JPEG, WebP), <see cref="PngDecoder"/>, <see cref="NpzReader"/> and the dataset and sample loaders; the CLI
/// fills it from <c>--max-image-pixels</c> / <c>--max-array-elements</c> or the environment variables
/// <see cref="ImagePixelsVariable"/> / <see cref="ArrayElementsVariable"/>.
/// </summary>
public sealed record InputLimits
{
    /// <summary>
    /// Pillow's <c>Image.MAX_IMAGE_PIXELS</c>: every image the reference Python pipeline opens without a
    /// DecompressionBombWarning opens here too; decoded as RGBA that is at most 358 MB.
    /// </summary>
    public const long DefaultMaxImagePixels = 89_478_485;

    /// <summary>
    /// 2^28 elements: 1 GiB once widened to float32, as every array is before use; e.g. 50,000 RGB
    /// samples of 32 x 32 (154 M elements) or 250,000 latents of 4 x 32 x 32 fit.
    /// </summary>
    public const long DefaultMaxArrayElements = 1L << 28;

    /// <summary>
    /// Class labels at or above this are refused when the class count is not known otherwise
    /// (ImageNet-21k's 21,841 classes fit): a label becomes a row of a label-embedding table.
    /// </summary>
    public const int DefaultMaxClasses = 100_000;

    /// <summary>The environment variable the CLI reads <see cref="MaxImagePixels"/> from.</summary>
    public const string ImagePixelsVariable = "MDIT_MAX_IMAGE_PIXELS";
    /// <summary>The environment variable the CLI reads <see cref="MaxArrayElements"/> from.</summary>
    public const string ArrayElementsVariable = "MDIT_MAX_ARRAY_ELEMENTS";

    /// <summary>The defaults above.</summary>
    public static InputLimits Default { get; } = new();

    /// <summary>Largest width x height an image (PNG, JPEG or WebP) may declare in its header.</summary>
    public long MaxImagePixels { get; init; } = DefaultMaxImagePixels;

    /// <summary>Most elements one array read whole (from .npz or .npy) may declare.</summary>
    public long MaxArrayElements { get; init; } = DefaultMaxArrayElements;

    /// <summary>Most classes a label file may imply when nothing else gives the class count.</summary>
    public int MaxClasses { get; init; } = DefaultMaxClasses;

    internal static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>The one-sentence refusal of an image whose header declares more than <see cref="MaxImagePixels"/>.</summary>
    internal MediatorDiTException ImageTooLarge(string source, long width, long height) =>
        new($"{source}: declares {Count(width)} x {Count(height)} = {Count(width * height)} pixels, more than the limit of {Count(MaxImagePixels)} " +
            $"(raise it with --max-image-pixels or {ImagePixelsVariable} if the image is genuine).");

    /// <summary>The one-sentence refusal of an array whose header declares more than <see cref="MaxArrayElements"/>.</summary>
    internal MediatorDiTException ArrayTooLarge(string source, string array, long elements) =>
        new($"{source}: declares {array} with {Count(elements)} elements, more than the limit of {Count(MaxArrayElements)} " +
            $"(raise it with --max-array-elements or {ArrayElementsVariable} if the file is genuine).");
}
