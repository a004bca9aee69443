using MediatorDiT.Evaluation;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>FID's Frechet distance against closed forms, and the Gaussian fit against hand-computed moments.</summary>
public class FrechetDistanceTests
{
    private static double[] Diagonal(params double[] d)
    {
        var m = new double[d.Length * d.Length];
        for (int i = 0; i < d.Length; i++) m[i * d.Length + i] = d[i];
        return m;
    }

    [Fact]
    public void DiagonalCovariancesGiveTheSumOfPerAxisTerms()
    {
        double[] m1 = [0, 1, -2], m2 = [1, 1, 0.5];
        double[] v1 = [1, 4, 0.25], v2 = [9, 1, 0.25];
        // Per axis: (m1 - m2)^2 + (sqrt v1 - sqrt v2)^2.
        double expected = 0;
        for (int i = 0; i < 3; i++) expected += Math.Pow(m1[i] - m2[i], 2) + Math.Pow(Math.Sqrt(v1[i]) - Math.Sqrt(v2[i]), 2);
        double fid = FrechetDistance.Compute(new GaussianStatistics(m1, Diagonal(v1)), new GaussianStatistics(m2, Diagonal(v2)));
        Assert.Equal(expected, fid, 10);
        Assert.Equal(1 + 4 + 0 + 1 + 6.25 + 0, expected, 12); // per axis (0-1)^2 + (1-3)^2, 0 + (2-1)^2, (-2.5)^2 + 0
    }

    [Fact]
    public void RotatedCovariancesMatchTheTwoByTwoClosedForm()
    {
        // S1 = R(30 deg) diag(4, 1) R^T, S2 = [[2, -0.7], [-0.7, 0.9]]: neither diagonal.
        double c = Math.Cos(Math.PI / 6), s = Math.Sin(Math.PI / 6);
        double a = 4, b = 1;
        double[] s1 = [a * c * c + b * s * s, (a - b) * c * s, (a - b) * c * s, a * s * s + b * c * c];
        double[] s2 = [2, -0.7, -0.7, 0.9];
        double[] m1 = [0.3, -1], m2 = [-0.2, 0.4];
        // For 2x2 P = S1 S2 with eigenvalues l1, l2 >= 0: tr sqrt(P) = sqrt(l1) + sqrt(l2) = sqrt(tr P + 2 sqrt(det P)).
        double trP = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
        double detP = (s1[0] * s1[3] - s1[1] * s1[2]) * (s2[0] * s2[3] - s2[1] * s2[2]);
        double trSqrt = Math.Sqrt(trP + 2 * Math.Sqrt(detP));
        double expected = Math.Pow(m1[0] - m2[0], 2) + Math.Pow(m1[1] - m2[1], 2) + (s1[0] + s1[3]) + (s2[0] + s2[3]) - 2 * trSqrt;
        Assert.Equal(trSqrt, FrechetDistance.TraceOfSquareRootOfProduct(s1, s2, 2), 12);
        Assert.Equal(expected, FrechetDistance.Compute(new GaussianStatistics(m1, s1), new GaussianStatistics(m2, s2)), 12);
    }

    [Fact]
    public void IdenticalGaussiansAreAtDistanceZeroEvenWhenSingular()
    {
        int n = 30;
        // Rank-5 covariance: B B^T with B (30, 5).
        var bm = TestData.Gaussian(n * 5, 3);
        var cov = new double[n * n];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        for (int k = 0; k < 5; k++)
            cov[i * n + j] += (double)bm[i * 5 + k] * bm[j * 5 + k];
        var g = new GaussianStatistics(new double[n], cov);
        double trace = Enumerable.Range(0, n).Sum(i => cov[i * n + i]);
        Assert.True(Math.Abs(FrechetDistance.Compute(g, g)) < 1e-6 * trace, $"FID(g, g) = {FrechetDistance.Compute(g, g)}");
    }

    [Fact]
    public void GaussianFitIsTheMeanAndUnbiasedCovariance()
    {
        // Three 2-D points: mean (1, 2); deviations (-1, -2), (0, 1), (1, 1).
        float[] points = [0, 0, 1, 3, 2, 3];
        var g = GaussianStatistics.FromFeatures(points, 3, 2);
        Assert.Equal([1.0, 2.0], g.Mean);
        // cov = sum d d^T / 2 = [[2, 3], [3, 6]] / 2.
        Assert.Equal([1.0, 1.5, 1.5, 3.0], g.Covariance);
    }
}
