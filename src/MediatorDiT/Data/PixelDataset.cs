using System.Buffers;
using MediatorDiT.Nn;

namespace MediatorDiT.Data;

/// <summary>
/// One split of a built-in grey dataset as training samples (1, S, S) in [-1, 1], prepared on each
/// <see cref="Get"/> from the uint8 images held in memory (cheap: a few thousand operations).
/// Sample i is image <c>Indices[i]</c> of the cached set: class by class, in package order.
/// </summary>
public sealed class PixelDataset : IDataset
{
    private readonly CachedImageSet _images;
    private readonly int[] _indices;

    /// <summary>The <paramref name="split"/> of <paramref name="images"/> as samples (1, S, S).</summary>
    /// <param name="images">A built-in dataset's cached images.</param>
    /// <param name="split">Train, test or all.</param>
    /// <param name="preprocessing">Target size and fit; null: <see cref="PixelPreprocessing.Default"/> (pad to 32).</param>
    /// <exception cref="MediatorDiTException">The size is not positive, or padding would have to shrink the images.</exception>
    public PixelDataset(CachedImageSet images, DatasetSplit split, PixelPreprocessing? preprocessing = null)
    {
        _images = images;
        Split = split;
        Preprocessing = preprocessing ?? PixelPreprocessing.Default;
        Preprocessing.CheckSource(images.Height, images.Width);
        _indices = images.SplitIndices(split);
        SampleShape = new SampleShape(1, Preprocessing.TargetSize, Preprocessing.TargetSize);
    }

    /// <summary>
    /// Loads (fetching and caching on first use, see <see cref="DatasetCache"/>) the built-in dataset
    /// <paramref name="name"/> and returns its <paramref name="split"/>.
    /// </summary>
    public static PixelDataset Open(string name, DatasetSplit split, PixelPreprocessing? preprocessing = null, string? dataDir = null,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default) =>
        new(DatasetCache.Ensure(name, dataDir, progress, cancellationToken), split, preprocessing);

    /// <summary>The cached set this split indexes into.</summary>
    public CachedImageSet Images => _images;

    /// <summary>The split these samples are.</summary>
    public DatasetSplit Split { get; }

    /// <summary>How images become samples.</summary>
    public PixelPreprocessing Preprocessing { get; }

    /// <summary>Indices into <see cref="Images"/> of this split's samples, in sample order.</summary>
    public IReadOnlyList<int> Indices => _indices;

    /// <inheritdoc/>
    public int Count => _indices.Length;

    /// <inheritdoc/>
    public int NumClasses => _images.NumClasses;

    /// <inheritdoc/>
    public SampleShape SampleShape { get; }

    /// <inheritdoc/>
    public void Get(int index, Span<float> sample, out int label)
    {
        if ((uint)index >= (uint)_indices.Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"the dataset has {_indices.Length} samples.");
        if (sample.Length != SampleShape.Length) throw new ArgumentException($"the sample buffer has {sample.Length} floats, but a sample {SampleShape} has {SampleShape.Length}.");
        int source = _indices[index];
        label = _images.Label(source);
        int h = _images.Height, w = _images.Width, size = Preprocessing.TargetSize;
        if (size == h && size == w)
        {
            ImageTransforms.BytesToSigned(_images.Image(source), sample);
            return;
        }
        float[] scratch = ArrayPool<float>.Shared.Rent(h * w);
        try
        {
            Span<float> signed = scratch.AsSpan(0, h * w);
            ImageTransforms.BytesToSigned(_images.Image(source), signed);
            if (Preprocessing.Fit == SizeFit.Pad) ImageTransforms.PadCentered(signed, sample, 1, h, w, size, size, -1f);
            else BilinearResize.Forward(signed, sample, 1, h, w, size, size);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
        }
    }
}
