namespace MediatorDiT.Evaluation;

/// <summary>
/// Eigenvalues (and vectors) of a small symmetric matrix by cyclic Jacobi rotations, in double precision:
/// enough for the covariance matrices of a few dozen features that the Frechet scorer needs.
/// </summary>
public static class SymmetricEigen
{
    /// <summary>
    /// Decomposes the symmetric n x n matrix <paramref name="a"/> (row-major, n*n values, left unchanged):
    /// returns eigenvalues w (n) and eigenvectors V (n x n, row-major, column j belongs to w[j]) with A = V diag(w) V^T.
    /// </summary>
    public static (double[] Values, double[] Vectors) Decompose(ReadOnlySpan<double> a, int n)
    {
        if (n < 0 || a.Length != n * n) throw new ArgumentException($"expected {n} x {n} values, got {a.Length}.", nameof(a));
        var m = a.ToArray();
        var v = new double[n * n];
        for (int i = 0; i < n; i++) v[i * n + i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, diag = 0;
            for (int i = 0; i < n; i++)
            {
                diag += m[i * n + i] * m[i * n + i];
                for (int j = i + 1; j < n; j++) off += m[i * n + j] * m[i * n + j];
            }
            if (off <= 1e-30 * Math.Max(diag, 1e-300)) break;
            for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++)
            {
                double apq = m[p * n + q];
                if (apq == 0) continue;
                // Rotation angle that zeroes m[p, q] (Golub and Van Loan, symmetric Schur decomposition).
                double theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
                double t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++)
                {
                    double mkp = m[k * n + p], mkq = m[k * n + q];
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for (int k = 0; k < n; k++)
                {
                    double mpk = m[p * n + k], mqk = m[q * n + k];
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for (int k = 0; k < n; k++)
                {
                    double vkp = v[k * n + p], vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
        var w = new double[n];
        for (int i = 0; i < n; i++) w[i] = m[i * n + i];
        return (w, v);
    }
}
