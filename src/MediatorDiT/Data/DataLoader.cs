using MediatorDiT.Tensors;

namespace MediatorDiT.Data;

/// <summary>
/// Cuts a dataset into batches, epoch after epoch. Epoch e's order (and its flips) comes from a
/// generator seeded with (Seed, e) alone, so batch k of a run is a pure function of the seed, the
/// dataset and k: <see cref="GetBatch(long)"/> at a checkpoint's step resumes exactly, without
/// replaying earlier epochs. Global step k is batch k mod B of epoch k div B, B =
/// <see cref="BatchesPerEpoch"/>. Batches are filled in parallel (<see cref="IDataset.Get"/> is thread-safe).
/// </summary>
public sealed class DataLoader
{
    // Separate streams so turning flips on does not change the order.
    private const ulong OrderStream = 0x6F72646572UL, FlipStream = 0x666C6970UL;

    private readonly Lock _planLock = new();
    private EpochPlan? _plan;

    /// <summary>A loader over <paramref name="dataset"/>.</summary>
    /// <param name="dataset">The samples; <see cref="IDataset.Get"/> must be thread-safe.</param>
    /// <param name="options">Batch size, seed, shuffling, drop-last and flips.</param>
    /// <exception cref="MediatorDiTException">The batch size is below 1, the dataset is empty, or drop-last leaves no batch.</exception>
    public DataLoader(IDataset dataset, DataLoaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BatchSize < 1)
            throw new MediatorDiTException($"The batch size must be at least 1, but is {options.BatchSize}.");
        if (options.DropLast && dataset.Count < options.BatchSize)
            throw new MediatorDiTException($"The dataset has {dataset.Count} samples, fewer than one batch of {options.BatchSize}, so dropping the last partial batch leaves nothing; lower the batch size.");
        if (dataset.Count == 0)
            throw new MediatorDiTException("The dataset is empty, so there is nothing to load.");
        Dataset = dataset;
        Options = options;
        BatchesPerEpoch = options.DropLast ? dataset.Count / options.BatchSize : (dataset.Count + options.BatchSize - 1) / options.BatchSize;
    }

    /// <summary>The dataset batches are drawn from.</summary>
    public IDataset Dataset { get; }

    /// <summary>The batching settings.</summary>
    public DataLoaderOptions Options { get; }

    /// <summary>Samples per full batch.</summary>
    public int BatchSize => Options.BatchSize;

    /// <summary>Batches in one pass over the dataset (the last, partial one counted unless dropped).</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>The epoch global batch <paramref name="step"/> belongs to: step div <see cref="BatchesPerEpoch"/>.</summary>
    /// <param name="step">A global batch number, at least 0.</param>
    public long EpochOf(long step) => Math.DivRem(CheckStep(step), BatchesPerEpoch).Quotient;

    /// <summary>The first step of <paramref name="epoch"/>.</summary>
    public long FirstStepOf(long epoch) => checked(epoch * BatchesPerEpoch);

    /// <summary>Dataset indices in the order epoch <paramref name="epoch"/> visits them (identity without shuffling).</summary>
    public int[] Order(long epoch) => (int[])Plan(epoch).Order.Clone();

    /// <summary>Batch <paramref name="step"/> in new tensors.</summary>
    public DataBatch GetBatch(long step)
    {
        int size = BatchSizeAt(step);
        SampleShape shape = Dataset.SampleShape;
        var images = new Tensor(size, shape.Channels, shape.Height, shape.Width);
        var labels = new int[size];
        return Fill(step, images, labels);
    }

    /// <summary>
    /// Batch <paramref name="step"/> into reused buffers: <paramref name="images"/> is reshaped to
    /// (B, C, H, W) (storage grows only when needed) and <paramref name="labels"/> must hold B entries.
    /// </summary>
    public DataBatch GetBatch(long step, Tensor images, int[] labels)
    {
        int size = BatchSizeAt(step);
        if (labels.Length < size) throw new ArgumentException($"labels has room for {labels.Length} entries, but the batch has {size}.", nameof(labels));
        SampleShape shape = Dataset.SampleShape;
        images.EnsureShape(size, shape.Channels, shape.Height, shape.Width);
        return Fill(step, images, labels);
    }

    /// <summary>
    /// Samples [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>) of batch
    /// <paramref name="step"/> into their places in reused buffers shaped for the whole batch; the other samples and
    /// labels are left as they are. A data-parallel rank loads its share of the global batch this way.
    /// </summary>
    public void GetBatch(long step, Tensor images, int[] labels, int first, int count)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        int size = BatchSizeAt(step);
        if (first < 0 || count < 0 || first + count > size)
            throw new ArgumentOutOfRangeException(nameof(count), $"samples {first}..{first + count - 1} are outside the batch of {size}.");
        if (labels.Length < size) throw new ArgumentException($"labels has room for {labels.Length} entries, but the batch has {size}.", nameof(labels));
        SampleShape shape = Dataset.SampleShape;
        images.EnsureShape(size, shape.Channels, shape.Height, shape.Width);
        Fill(step, images, labels, first, count);
    }

    /// <summary>Batches from <paramref name="firstStep"/> on, without end; stop by breaking out or cancelling.</summary>
    public IEnumerable<DataBatch> Batches(long firstStep = 0, CancellationToken cancellationToken = default)
    {
        for (long step = CheckStep(firstStep); ; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return GetBatch(step);
        }
    }

    /// <summary>The batches of one epoch, in order.</summary>
    public IEnumerable<DataBatch> EpochBatches(long epoch, CancellationToken cancellationToken = default)
    {
        long first = FirstStepOf(epoch);
        for (int b = 0; b < BatchesPerEpoch; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return GetBatch(first + b);
        }
    }

    /// <summary>B for step <paramref name="step"/>: BatchSize, or the remainder for an epoch's last batch when it is kept.</summary>
    public int BatchSizeAt(long step)
    {
        int inEpoch = (int)(CheckStep(step) % BatchesPerEpoch);
        return Math.Min(BatchSize, Dataset.Count - inEpoch * BatchSize);
    }

    private DataBatch Fill(long step, Tensor images, int[] labels, int first = 0, int count = -1)
    {
        (long epoch, long inEpochLong) = Math.DivRem(step, BatchesPerEpoch);
        int inEpoch = (int)inEpochLong;
        int size = BatchSizeAt(step);
        EpochPlan plan = Plan(epoch);
        int start = inEpoch * BatchSize;
        int[] indices = plan.Order.AsSpan(start, size).ToArray();
        bool[] flipped = plan.Flip.AsSpan(start, size).ToArray();
        SampleShape shape = Dataset.SampleShape;
        int length = shape.Length;
        float[] data = images.Data;
        if (count < 0) count = size - first;
        ParallelLoop.For(count, j =>
        {
            int i = first + j;
            Span<float> sample = data.AsSpan(i * length, length);
            Dataset.Get(indices[i], sample, out labels[i]);
            if (flipped[i]) ImageTransforms.FlipHorizontal(sample, shape);
        });
        for (int i = first; i < first + count; i++)
        {
            if ((uint)labels[i] >= (uint)Dataset.NumClasses)
                throw new MediatorDiTException($"Sample {indices[i]} has label {labels[i]}, outside the dataset's {Dataset.NumClasses} classes.");
        }
        int[] batchLabels = labels.Length == size ? labels : labels.AsSpan(0, size).ToArray();
        return new DataBatch(images, batchLabels, step, epoch, inEpoch, indices, flipped);
    }

    private EpochPlan Plan(long epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        lock (_planLock)
        {
            if (_plan is { } cached && cached.Epoch == epoch) return cached;
            int n = Dataset.Count;
            var order = new int[n];
            for (int i = 0; i < n; i++) order[i] = i;
            if (Options.Shuffle)
            {
                // Fisher-Yates with the epoch's own generator.
                var random = new RandomSource(StreamSeed(epoch, OrderStream));
                for (int i = n - 1; i > 0; i--)
                {
                    int j = random.NextInt(i + 1);
                    (order[i], order[j]) = (order[j], order[i]);
                }
            }
            var flip = new bool[n];
            if (Options.HorizontalFlip)
            {
                var random = new RandomSource(StreamSeed(epoch, FlipStream));
                for (int i = 0; i < n; i++) flip[i] = (random.NextUInt64() >> 63) != 0;
            }
            _plan = new EpochPlan(epoch, order, flip);
            return _plan;
        }
    }

    /// <summary>A seed for (epoch, stream): the run seed mixed through two rounds of a 64-bit finaliser.</summary>
    private ulong StreamSeed(long epoch, ulong stream) => Mix(Mix(Options.Seed ^ stream) + (ulong)epoch * 0x9E3779B97F4A7C15UL);

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static long CheckStep(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        return step;
    }

    /// <summary>Visit order and flips (per position in the epoch) of one epoch.</summary>
    private sealed record EpochPlan(long Epoch, int[] Order, bool[] Flip);
}
