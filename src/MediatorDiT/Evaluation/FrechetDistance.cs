namespace MediatorDiT.Evaluation;

/// <summary>
/// The Frechet distance between two Gaussians N(m1, S1), N(m2, S2) (the FID of two feature sets):
/// |m1 - m2|^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2. The trace of the square root is the sum of
/// the square roots of the eigenvalues of the symmetric matrix S1^1/2 S2 S1^1/2, which equals
/// tr (S1 S2)^1/2 of the usual formula; both square roots come from <see cref="SymmetricEigen"/>,
/// with eigenvalues below zero (rounding on singular covariances) taken as zero. All float64.
/// </summary>
public static class FrechetDistance
{
    /// <summary>The Frechet distance between the two fits (0 for equal ones).</summary>
    /// <param name="a">One Gaussian fit.</param>
    /// <param name="b">The other, of the same dimension.</param>
    /// <exception cref="MediatorDiTException">The dimensions differ.</exception>
    public static double Compute(GaussianStatistics a, GaussianStatistics b)
    {
        if (a.Dimension != b.Dimension)
            throw new MediatorDiTException($"the feature dimensions differ ({a.Dimension} and {b.Dimension}); were both sets extracted with the same classifier?");
        int n = a.Dimension;
        double meanTerm = 0, traceA = 0, traceB = 0;
        for (int i = 0; i < n; i++)
        {
            double d = a.Mean[i] - b.Mean[i];
            meanTerm += d * d;
            traceA += a.Covariance[i * n + i];
            traceB += b.Covariance[i * n + i];
        }
        return meanTerm + traceA + traceB - 2 * TraceOfSquareRootOfProduct(a.Covariance, b.Covariance, n);
    }

    /// <summary>tr (S1^1/2 S2 S1^1/2)^1/2 for symmetric positive semi-definite S1, S2 (n, n).</summary>
    public static double TraceOfSquareRootOfProduct(double[] s1, double[] s2, int n)
    {
        var (w1, v1) = SymmetricEigen.Decompose(s1, n);
        var root1 = SymmetricEigen.Compose(w1, v1, w => Math.Sqrt(Math.Max(w, 0)));
        // M = R S2 R with R = S1^1/2 (symmetric): T = R S2, M = T R.
        var t = Multiply(root1, s2, n);
        var m = Multiply(t, root1, n);
        for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            m[i * n + j] = m[j * n + i] = 0.5 * (m[i * n + j] + m[j * n + i]);
        var (w, _) = SymmetricEigen.Decompose(m, n);
        double trace = 0;
        foreach (double x in w) trace += Math.Sqrt(Math.Max(x, 0));
        return trace;
    }

    private static double[] Multiply(double[] a, double[] b, int n)
    {
        var c = new double[n * n];
        for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++)
        {
            double aik = a[i * n + k];
            if (aik == 0) continue;
            for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
        }
        return c;
    }
}
