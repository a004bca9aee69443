using System.Collections.Concurrent;
using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Data;

/// <summary>
/// A folder of class sub-folders of images, as torchvision's ImageFolder reads it: class c is
/// the c-th sub-folder name in ordinal (code point) order; a class's files are all PNG, JPEG and WebP
/// files below its folder (<see cref="ImageFolderListing"/>; nested folders included), folders by path
/// then files by name. Each image is decoded once (<see cref="ImageFile"/>), converted to RGB (grey repeated, alpha dropped), cut with ADM/DiT's center_crop_arr
/// (<see cref="CenterCrop"/>) and kept as uint8 (S, S, 3), S x S x 3 bytes per image in memory;
/// <see cref="Get"/> gives (3, S, S) in [-1, 1]. A file that cannot be decoded is skipped with a
/// warning naming it and counted in <see cref="SkippedFiles"/>.
/// </summary>
public sealed class ImageFolderDataset : IDataset
{
    private readonly byte[][] _images;
    private readonly int[] _labels;
    private readonly string[] _files;
    private readonly string[] _classNames;

    private ImageFolderDataset(string folder, int imageSize, string[] classNames, string[] files, byte[][] images, int[] labels, IReadOnlyList<string> skipped)
    {
        Folder = folder;
        ImageSize = imageSize;
        _classNames = classNames;
        _files = files;
        _images = images;
        _labels = labels;
        SkippedFileNames = skipped;
        SampleShape = new SampleShape(3, imageSize, imageSize);
    }

    /// <summary>
    /// Reads every image below <paramref name="folder"/>'s class sub-folders, decoding in parallel.
    /// Progress gets a line per skipped file and a count every few hundred images. An image whose header
    /// declares more pixels than <paramref name="limits"/> allow is skipped like an unreadable one.
    /// </summary>
    public static ImageFolderDataset Load(string folder, int imageSize, IProgress<string>? progress = null, CancellationToken cancellationToken = default,
        InputLimits? limits = null)
    {
        if (imageSize < 1)
            throw new MediatorDiTException($"The image size must be positive, but is {imageSize}.");
        var listing = ImageFolderListing.Read(folder);
        string root = listing.Root;
        string[] classNames = [.. listing.ClassNames];
        var files = listing.Files;

        var images = new byte[files.Count][];
        var failures = new ConcurrentDictionary<int, string>();
        int decoded = 0;
        progress?.Report($"{folder}: decoding {files.Count} image files of {classNames.Length} classes at {imageSize}x{imageSize}");
        var options = new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = ComputeContext.Current.Threads };
        Parallel.For(0, files.Count, options, i =>
        {
            try
            {
                DecodedImage rgb = ImageFile.Read(files[i].Path, limits).ToRgb();
                images[i] = CenterCrop.Apply(rgb.Pixels, rgb.Width, rgb.Height, 3, imageSize);
            }
            catch (Exception ex) when (ex is MediatorDiTException or InvalidDataException or IOException)
            {
                failures[i] = ex.Message;
            }
            int done = Interlocked.Increment(ref decoded);
            if (done % 500 == 0) progress?.Report($"{folder}: decoded {done} of {files.Count} images");
        });

        var skipped = new List<string>();
        foreach (int i in failures.Keys.Order())
        {
            skipped.Add(files[i].Path);
            progress?.Report($"warning: skipped {files[i].Path}, it is not a readable image ({failures[i].TrimEnd('.')})");
        }
        var kept = Enumerable.Range(0, files.Count).Where(i => images[i] is not null).ToArray();
        var unreadable = Enumerable.Range(0, classNames.Length).Where(c => !kept.Any(i => files[i].Label == c)).Select(c => classNames[c]).ToList();
        if (unreadable.Count > 0)
            throw new MediatorDiTException($"{folder}: class folder{(unreadable.Count > 1 ? "s" : "")} {string.Join(", ", unreadable.Take(5))} hold{(unreadable.Count > 1 ? "" : "s")} no readable image; every class needs at least one image.");
        if (skipped.Count > 0)
            progress?.Report($"{folder}: skipped {skipped.Count} unreadable image file{(skipped.Count > 1 ? "s" : "")}, kept {kept.Length}");

        return new ImageFolderDataset(root, imageSize, classNames,
            kept.Select(i => files[i].Path).ToArray(), kept.Select(i => images[i]).ToArray(), kept.Select(i => files[i].Label).ToArray(), skipped);
    }

    /// <summary>The folder read, as a full path.</summary>
    public string Folder { get; }

    /// <summary>Side S of the square samples.</summary>
    public int ImageSize { get; }

    /// <summary>Sub-folder names; label c is ClassNames[c].</summary>
    public IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>The file of each sample, in sample order.</summary>
    public IReadOnlyList<string> Files => _files;

    /// <summary>Image files that could not be decoded and were left out.</summary>
    public int SkippedFiles => SkippedFileNames.Count;

    /// <summary>The paths of the files left out.</summary>
    public IReadOnlyList<string> SkippedFileNames { get; }

    /// <inheritdoc/>
    public int Count => _images.Length;

    /// <inheritdoc/>
    public int NumClasses => _classNames.Length;

    /// <inheritdoc/>
    public SampleShape SampleShape { get; }

    /// <summary>The cropped uint8 pixels (S, S, 3) of sample <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> Pixels(int index) => _images[index];

    /// <inheritdoc/>
    public void Get(int index, Span<float> sample, out int label)
    {
        if ((uint)index >= (uint)_images.Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"the dataset has {_images.Length} samples.");
        if (sample.Length != SampleShape.Length) throw new ArgumentException($"the sample buffer has {sample.Length} floats, but a sample {SampleShape} has {SampleShape.Length}.");
        ImageTransforms.InterleavedBytesToSignedPlanes(_images[index], sample, 3);
        label = _labels[index];
    }
}
