namespace MediatorDiT.Data;

/// <summary>
/// Every image of a built-in dataset, in memory as the cache stores it: uint8 (N, H, W) grey
/// images sorted by class, then by their order in the package, and one label per image. Splits are
/// index lists into this set (<see cref="SplitIndices"/>); <see cref="PixelDataset"/> reads them as
/// training samples.
/// </summary>
public sealed class CachedImageSet
{
    private readonly byte[] _images;
    private readonly byte[] _labels;
    private readonly int[] _classCounts;
    private readonly int[] _classStarts;

    internal CachedImageSet(BuiltInDataset dataset, string cacheFolder, ImageSetContents contents)
    {
        Dataset = dataset;
        CacheFolder = cacheFolder;
        _images = contents.Images;
        _labels = contents.Labels;
        _classCounts = contents.ClassCounts;
        _classStarts = new int[_classCounts.Length + 1];
        for (int c = 0; c < _classCounts.Length; c++) _classStarts[c + 1] = _classStarts[c] + _classCounts[c];
        if (_classStarts[^1] != _labels.Length || (long)_labels.Length * ImagePixels != _images.Length)
            throw new ArgumentException("class counts, labels and image bytes disagree.");
    }

    /// <summary>The dataset these images belong to.</summary>
    public BuiltInDataset Dataset { get; }

    /// <summary>The folder holding images.u8, labels.u8 and manifest.json.</summary>
    public string CacheFolder { get; }

    /// <summary>Images of all splits together.</summary>
    public int Count => _labels.Length;

    /// <summary>Classes; labels lie in [0, NumClasses).</summary>
    public int NumClasses => _classCounts.Length;

    /// <summary>Image rows in pixels.</summary>
    public int Height => Dataset.ImageHeight;

    /// <summary>Image columns in pixels.</summary>
    public int Width => Dataset.ImageWidth;

    /// <summary>Height x Width, the bytes of one image.</summary>
    public int ImagePixels => Dataset.ImageHeight * Dataset.ImageWidth;

    /// <summary>Images per class, class 0 first.</summary>
    public IReadOnlyList<int> ClassCounts => _classCounts;

    /// <summary>All images, (N, H, W) uint8.</summary>
    public ReadOnlySpan<byte> Images => _images;

    /// <summary>One label per image (N), in image order.</summary>
    public ReadOnlySpan<byte> Labels => _labels;

    /// <summary>Image <paramref name="index"/> of the whole set, (H, W) uint8.</summary>
    public ReadOnlySpan<byte> Image(int index) => _images.AsSpan(checked(index * ImagePixels), ImagePixels);

    /// <summary>The label of image <paramref name="index"/> of the whole set.</summary>
    /// <param name="index">Image index in [0, Count).</param>
    public int Label(int index) => _labels[index];

    /// <summary>
    /// Indices into this set of the images of <paramref name="split"/>, by class then source order:
    /// per class c, the last <c>Dataset.TestSplit.TestCount(n_c)</c> images are test, the rest train.
    /// </summary>
    public int[] SplitIndices(DatasetSplit split)
    {
        var indices = new List<int>(Count);
        for (int c = 0; c < NumClasses; c++)
        {
            int start = _classStarts[c], count = _classCounts[c];
            int test = Dataset.TestSplit.TestCount(count);
            (int from, int length) = split switch
            {
                DatasetSplit.Train => (start, count - test),
                DatasetSplit.Test => (start + count - test, test),
                DatasetSplit.All => (start, count),
                _ => throw new ArgumentOutOfRangeException(nameof(split), split, "unknown split."),
            };
            for (int i = 0; i < length; i++) indices.Add(from + i);
        }
        return indices.ToArray();
    }
}
