namespace MediatorDiT.Evaluation;

/// <summary>
/// Improved precision and recall (Kynkaanniemi et al. 2019) from two k-NN manifolds: precision is the
/// fraction of generated samples on the real manifold, recall the fraction of real samples on the
/// generated one. Sets larger than a cap are thinned to evenly spaced rows (the reference splits are
/// ordered by class, so this keeps them balanced); the paper uses sets of equal size, and a common cap
/// keeps the two manifolds comparable and the cost bounded (N^2 distances).
/// </summary>
public static class PrecisionRecall
{
    /// <summary>Precision (generated points on the real manifold) and recall (real points on the generated one), each in [0, 1].</summary>
    /// <param name="real">The manifold of the reference features.</param>
    /// <param name="generated">The manifold of the generated features, of the same dimension.</param>
    /// <param name="cancellationToken">Stops between distance blocks.</param>
    /// <exception cref="MediatorDiTException">The dimensions differ.</exception>
    public static (double Precision, double Recall) Compute(KnnManifold real, KnnManifold generated, CancellationToken cancellationToken = default)
    {
        if (real.Dimension != generated.Dimension)
            throw new MediatorDiTException($"the feature dimensions differ ({real.Dimension} and {generated.Dimension}).");
        double precision = real.Coverage(generated.Points, generated.Count, cancellationToken);
        double recall = generated.Coverage(real.Points, real.Count, cancellationToken);
        return (precision, recall);
    }

    /// <summary>Rows floor(i N / M), i &lt; M, of features (N, D) when N &gt; M; the features themselves otherwise.</summary>
    public static (float[] Points, int Count) Thin(float[] features, int count, int dimension, int maxPoints)
    {
        if (maxPoints <= 0 || count <= maxPoints) return (features, count);
        var thinned = new float[(long)maxPoints * dimension];
        for (int i = 0; i < maxPoints; i++)
        {
            int source = (int)((long)i * count / maxPoints);
            features.AsSpan(source * dimension, dimension).CopyTo(thinned.AsSpan(i * dimension, dimension));
        }
        return (thinned, maxPoints);
    }
}
