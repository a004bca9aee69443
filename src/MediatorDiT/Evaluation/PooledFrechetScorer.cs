using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// A second cheap scorer, shaped like FID: each image becomes the average of each channel over a
/// pool x pool grid of cells (C * pool^2 features), Gaussians are fitted to the features of the scored
/// images and of the reference images, and the score is their Frechet distance
/// |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), covariances with the n - 1 denominator (as numpy.cov).
/// Unlike <see cref="ReferenceDistanceScorer"/> it compares distributions, not images index by index.
/// </summary>
public sealed class PooledFrechetScorer : ISampleScorer
{
    private readonly int _pool;
    private readonly int[] _shape;
    private readonly double[] _referenceMean;
    private readonly double[] _referenceCov;
    private readonly double[] _referenceSqrt;

    /// <param name="reference">Reference images (B, C, H, W), B &gt;= 2, H and W divisible by <paramref name="pool"/>.</param>
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
        (_referenceMean, _referenceCov) = MeanAndCovariance(Features(reference));
        _referenceSqrt = SquareRoot(_referenceCov, _referenceMean.Length);
    }

    public string Name => $"frechet-pool{_pool}";

    public double Score(Tensor images, int[] labels, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Rank != 4 || !images.Shape.AsSpan(1).SequenceEqual(_shape) || images.Dim(0) < 2)
            throw new MediatorDiTException($"the Frechet scorer needs at least 2 images of shape [{string.Join(", ", _shape)}], got [{images.ShapeString}].");
        cancellationToken.ThrowIfCancellationRequested();
        var (mean, cov) = MeanAndCovariance(Features(images));
        return FrechetDistance(mean, cov, _referenceMean, _referenceCov, _referenceSqrt);
    }

    /// <summary>
    /// Frechet distance between N(mu1, S1) and N(mu2, S2) (d x d row-major); sqrt2 = S2^(1/2) if known.
    /// tr (S1 S2)^(1/2) = tr (S2^(1/2) S1 S2^(1/2))^(1/2), the root of a symmetric PSD matrix.
    /// </summary>
    public static double FrechetDistance(double[] mu1, double[] s1, double[] mu2, double[] s2, double[]? sqrt2 = null)
    {
        int d = mu1.Length;
        if (mu2.Length != d || s1.Length != d * d || s2.Length != d * d)
            throw new ArgumentException("the two Gaussians have different dimensions.");
        sqrt2 ??= SquareRoot(s2, d);
        double meanTerm = 0, trace = 0;
        for (int i = 0; i < d; i++)
        {
            double diff = mu1[i] - mu2[i];
            meanTerm += diff * diff;
            trace += s1[i * d + i] + s2[i * d + i];
        }
        var inner = Multiply(Multiply(sqrt2, s1, d), sqrt2, d);
        Symmetrize(inner, d);
        var (w, _) = SymmetricEigen.Decompose(inner, d);
        double rootTrace = w.Sum(v => Math.Sqrt(Math.Max(v, 0)));
        return meanTerm + trace - 2 * rootTrace;
    }

    /// <summary>(n, C * pool^2) features: the mean of each channel over each cell.</summary>
    private double[][] Features(Tensor images)
    {
        int n = images.Dim(0), c = images.Dim(1), h = images.Dim(2), w = images.Dim(3);
        int ch = h / _pool, cw = w / _pool;
        var span = images.Span;
        var features = new double[n][];
        for (int s = 0; s < n; s++)
        {
            var f = features[s] = new double[c * _pool * _pool];
            for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                f[(k * _pool + y / ch) * _pool + x / cw] += span[((s * c + k) * h + y) * w + x];
            for (int i = 0; i < f.Length; i++) f[i] /= ch * cw;
        }
        return features;
    }

    private static (double[] Mean, double[] Cov) MeanAndCovariance(double[][] features)
    {
        int n = features.Length, d = features[0].Length;
        var mean = new double[d];
        foreach (var f in features)
            for (int i = 0; i < d; i++) mean[i] += f[i];
        for (int i = 0; i < d; i++) mean[i] /= n;
        var cov = new double[d * d];
        foreach (var f in features)
            for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) cov[i * d + j] += (f[i] - mean[i]) * (f[j] - mean[j]);
        for (int i = 0; i < cov.Length; i++) cov[i] /= n - 1;
        return (mean, cov);
    }

    /// <summary>The symmetric PSD square root V diag(sqrt(max(w, 0))) V^T.</summary>
    private static double[] SquareRoot(double[] s, int d)
    {
        var (w, v) = SymmetricEigen.Decompose(s, d);
        var root = new double[d * d];
        for (int k = 0; k < d; k++)
        {
            double r = Math.Sqrt(Math.Max(w[k], 0));
            for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) root[i * d + j] += v[i * d + k] * r * v[j * d + k];
        }
        return root;
    }

    private static double[] Multiply(double[] a, double[] b, int d)
    {
        var c = new double[d * d];
        for (int i = 0; i < d; i++)
        for (int k = 0; k < d; k++)
        {
            double aik = a[i * d + k];
            for (int j = 0; j < d; j++) c[i * d + j] += aik * b[k * d + j];
        }
        return c;
    }

    private static void Symmetrize(double[] m, int d)
    {
        for (int i = 0; i < d; i++)
        for (int j = i + 1; j < d; j++)
            m[i * d + j] = m[j * d + i] = 0.5 * (m[i * d + j] + m[j * d + i]);
    }
}
