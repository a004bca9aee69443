namespace MediatorDiT.Evaluation;

/// <summary>
/// Mean and covariance of feature vectors in float64: the Gaussian fit of FID. The covariance is the
/// unbiased one (divided by N - 1), as numpy.cov computes it for the reference FID code.
/// </summary>
public sealed class GaussianStatistics
{
    /// <summary>A fit from a given mean (D) and covariance (D, D), not copied.</summary>
    /// <param name="mean">The mean, length D.</param>
    /// <param name="covariance">The covariance, row-major (D, D).</param>
    /// <exception cref="ArgumentException">The covariance does not have D x D values.</exception>
    public GaussianStatistics(double[] mean, double[] covariance)
    {
        if (covariance.Length != mean.Length * mean.Length)
            throw new ArgumentException($"a covariance of dimension {mean.Length} needs {mean.Length * mean.Length} values, got {covariance.Length}.");
        Mean = mean;
        Covariance = covariance;
    }

    /// <summary>D, the feature dimension.</summary>
    public int Dimension => Mean.Length;
    /// <summary>The mean feature vector (D).</summary>
    public double[] Mean { get; }

    /// <summary>Row-major (D, D).</summary>
    public double[] Covariance { get; }

    /// <summary>features (N, D) row-major, N &gt;= 2.</summary>
    public static GaussianStatistics FromFeatures(ReadOnlySpan<float> features, int count, int dimension)
    {
        if (count < 2) throw new MediatorDiTException($"a Gaussian fit needs at least 2 feature vectors, got {count}.");
        if (features.Length != (long)count * dimension) throw new ArgumentException($"features hold {features.Length} values, not {count} x {dimension}.");
        var mean = new double[dimension];
        for (int i = 0; i < count; i++)
        {
            var row = features.Slice(i * dimension, dimension);
            for (int d = 0; d < dimension; d++) mean[d] += row[d];
        }
        for (int d = 0; d < dimension; d++) mean[d] /= count;
        var cov = new double[dimension * dimension];
        var centred = new double[dimension];
        for (int i = 0; i < count; i++)
        {
            var row = features.Slice(i * dimension, dimension);
            for (int d = 0; d < dimension; d++) centred[d] = row[d] - mean[d];
            for (int a = 0; a < dimension; a++)
            {
                double ca = centred[a];
                if (ca == 0) continue; // ReLU features are often exactly zero.
                int o = a * dimension;
                for (int b = a; b < dimension; b++) cov[o + b] += ca * centred[b];
            }
        }
        for (int a = 0; a < dimension; a++)
        for (int b = a; b < dimension; b++)
            cov[b * dimension + a] = cov[a * dimension + b] /= count - 1;
        return new GaussianStatistics(mean, cov);
    }
}
