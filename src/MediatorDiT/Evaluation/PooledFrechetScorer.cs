using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// A second cheap scorer, shaped like FID: each image becomes the average of each channel over a
/// pool x pool grid of cells (C * pool^2 features), Gaussians are fitted to the features of the scored
/// images and of the reference images, and the score is their Frechet distance (<see cref="FrechetDistance"/>,
/// covariances with the n - 1 denominator as numpy.cov).
/// Unlike <see cref="ReferenceDistanceScorer"/> it compares distributions, not images index by index.
/// </summary>
public sealed class PooledFrechetScorer : ISampleScorer
{
    private readonly int _pool;
    private readonly int[] _shape;
    private readonly GaussianStatistics _reference;

    /// <summary>Fits the reference Gaussian once; every score is against it.</summary>
    /// <param name="reference">Reference images (B, C, H, W), B &gt;= 2, H and W divisible by <paramref name="pool"/>.</param>
    /// <param name="pool">Cells per side of the pooling grid, at least 1.</param>
    /// <exception cref="MediatorDiTException">The pool size or the reference's shape is unusable.</exception>
    public PooledFrechetScorer(Tensor reference, int pool = 2)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (pool < 1) throw new MediatorDiTException($"the Frechet scorer's pool size must be at least 1, got {pool}.");
        if (reference.Rank != 4 || reference.Dim(0) < 2)
            throw new MediatorDiTException($"the Frechet scorer needs at least 2 reference images (B, C, H, W), got [{reference.ShapeString}].");
        if (reference.Dim(2) % pool != 0 || reference.Dim(3) % pool != 0)
            throw new MediatorDiTException($"images of {reference.Dim(2)} x {reference.Dim(3)} cannot be pooled into {pool} x {pool} cells; pick a pool size that divides both.");
        _pool = pool;
        _shape = reference.Shape[1..];
        _reference = Statistics(reference);
    }

    /// <inheritdoc/>
    public string Name => $"frechet-pool{_pool}";

    /// <inheritdoc/>
    /// <remarks>Needs at least 2 images of the reference's (C, H, W).</remarks>
    public double Score(Tensor images, int[] labels, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Rank != 4 || !images.Shape.AsSpan(1).SequenceEqual(_shape) || images.Dim(0) < 2)
            throw new MediatorDiTException($"the Frechet scorer needs at least 2 images of shape [{string.Join(", ", _shape)}], got [{images.ShapeString}].");
        cancellationToken.ThrowIfCancellationRequested();
        return FrechetDistance.Compute(Statistics(images), _reference);
    }

    /// <summary>The Gaussian fit of the (n, C * pool^2) features: the mean of each channel over each cell.</summary>
    private GaussianStatistics Statistics(Tensor images)
    {
        int n = images.Dim(0), c = images.Dim(1), h = images.Dim(2), w = images.Dim(3);
        int ch = h / _pool, cw = w / _pool, dim = c * _pool * _pool;
        var span = images.Span;
        var features = new float[n * dim];
        var cell = new double[dim];
        for (int s = 0; s < n; s++)
        {
            Array.Clear(cell);
            for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                cell[(k * _pool + y / ch) * _pool + x / cw] += span[((s * c + k) * h + y) * w + x];
            for (int i = 0; i < dim; i++) features[s * dim + i] = (float)(cell[i] / (ch * cw));
        }
        return GaussianStatistics.FromFeatures(features, n, dim);
    }
}
