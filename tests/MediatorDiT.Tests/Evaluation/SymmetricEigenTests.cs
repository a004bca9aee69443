using MediatorDiT.Evaluation;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Evaluation;

/// <summary>The Jacobi eigensolver: reconstruction, orthonormality and known spectra.</summary>
public class SymmetricEigenTests
{
    internal static double[] RandomSymmetric(int n, ulong seed)
    {
        var rng = new RandomSource(seed);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++)
            a[i * n + j] = a[j * n + i] = rng.NextGaussian();
        return a;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(40)]
    [InlineData(128)]
    public void EigenvectorsReconstructTheMatrixAndAreOrthonormal(int n)
    {
        var a = RandomSymmetric(n, (ulong)n);
        var (w, v) = SymmetricEigen.Decompose(a, n);
        double scale = a.Max(Math.Abs);
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        {
            double recon = 0, dot = 0;
            for (int k = 0; k < n; k++)
            {
                recon += v[i * n + k] * w[k] * v[j * n + k];
                dot += v[k * n + i] * v[k * n + j];
            }
            Assert.True(Math.Abs(recon - a[i * n + j]) <= 1e-11 * scale * n, $"A[{i},{j}] = {a[i * n + j]}, V diag(w) V^T gives {recon}");
            Assert.True(Math.Abs(dot - (i == j ? 1 : 0)) <= 1e-12 * n, $"V^T V [{i},{j}] = {dot}");
        }
        for (int k = 1; k < n; k++) Assert.True(w[k - 1] <= w[k], "eigenvalues ascending");
    }

    [Fact]
    public void KnownSpectrumOfARotatedDiagonalMatrixIsRecovered()
    {
        // A = H diag(d) H with the Householder reflection H = I - 2 u u^T / |u|^2: eigenvalues exactly d.
        int n = 9;
        double[] d = [-3, -1e-6, 0, 0, 1e-9, 0.5, 2, 2, 10];
        var rng = new RandomSource(77);
        var u = Enumerable.Range(0, n).Select(_ => rng.NextGaussian()).ToArray();
        double uu = u.Sum(x => x * x);
        var h = new double[n * n];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            h[i * n + j] = (i == j ? 1 : 0) - 2 * u[i] * u[j] / uu;
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int k = 0; k < n; k++) s += h[i * n + k] * d[k] * h[k * n + j];
            a[i * n + j] = s;
        }
        for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            a[i * n + j] = a[j * n + i] = 0.5 * (a[i * n + j] + a[j * n + i]);
        var (w, _) = SymmetricEigen.Decompose(a, n);
        for (int k = 0; k < n; k++) Assert.True(Math.Abs(w[k] - d[k]) < 1e-13 * 10, $"w[{k}] = {w[k]}, expected {d[k]}");
    }

    [Fact]
    public void TwoByTwoEigenvaluesMatchTheQuadraticFormula()
    {
        double p = 3, q = 1.5, r = -2;
        var (w, _) = SymmetricEigen.Decompose([p, q, q, r], 2);
        double mid = (p + r) / 2, radius = Math.Sqrt((p - r) * (p - r) / 4 + q * q);
        Assert.Equal(mid - radius, w[0], 12);
        Assert.Equal(mid + radius, w[1], 12);
    }

    [Fact]
    public void AnAsymmetricMatrixIsRejected()
    {
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Decompose([1, 2, 3, 4], 2));
    }
}
