namespace MediatorDiT.Evaluation;

/// <summary>Settings of <see cref="SampleEvaluator"/>.</summary>
public sealed record EvaluationOptions
{
    /// <summary>Neighbourhood size of the precision/recall manifolds (Kynkaanniemi et al. use 3).</summary>
    public int K { get; init; } = 3;

    /// <summary>
    /// Each precision/recall manifold is built from at most this many evenly spaced feature vectors (the
    /// paper compares sets of equal size; the cost grows with the square). FID and IS use every image.
    /// </summary>
    public int MaxManifoldPoints { get; init; } = 10_000;

    /// <summary>Images per classifier forward pass.</summary>
    public int BatchSize { get; init; } = FeatureExtractor.DefaultBatchSize;

    /// <summary>
    /// Rounds images to 8 bits (as a PNG or the .npz would store them) before the classifier sees them,
    /// so that in-memory tensors and their files score the same.
    /// </summary>
    public bool QuantizeTo8Bit { get; init; } = true;

    /// <summary>Folder for cached reference statistics; null: the dataset's cache folder.</summary>
    public string? CacheFolder { get; init; }

    /// <summary>Returns these options, or throws a <see cref="MediatorDiTException"/> naming the first impossible value.</summary>
    public EvaluationOptions Validate()
    {
        if (K < 1) throw new MediatorDiTException($"k must be at least 1, got {K}.");
        if (MaxManifoldPoints <= K) throw new MediatorDiTException($"the manifold size cap must exceed k = {K}, got {MaxManifoldPoints}.");
        if (BatchSize < 1) throw new MediatorDiTException($"the batch size must be positive, got {BatchSize}.");
        return this;
    }
}
