namespace MediatorDiT.Evaluation;

/// <summary>
/// Eigendecomposition of a real symmetric matrix, A = V diag(w) V^T, by the cyclic Jacobi method,
/// written here by hand in float64: sweep over every off-diagonal pair (p, q) and apply the plane
/// rotation that zeroes A[p, q], accumulating the rotations into V, until the off-diagonal part is
/// negligible against the whole matrix. Each sweep costs O(n^3); for the classifier's 128-dimensional
/// covariances a decomposition takes a fraction of a second. Jacobi is chosen over tridiagonal QL for
/// its simplicity and its high relative accuracy on small eigenvalues, which the matrix square root of
/// a nearly singular covariance needs.
/// </summary>
internal static class SymmetricEigen
{
    /// <summary>Sweeps after which the decomposition gives up.</summary>
    public const int MaxSweeps = 100;

    /// <summary>
    /// a (n, n) row-major, symmetric (only its values are read, not checked beyond a tolerance) ->
    /// eigenvalues ascending and eigenvectors as the columns of a row-major (n, n) matrix.
    /// </summary>
    public static (double[] Values, double[] Vectors) Decompose(ReadOnlySpan<double> a, int n)
    {
        if (n < 0 || a.Length != n * n) throw new ArgumentException($"a symmetric matrix of order {n} needs {n * n} values, got {a.Length}.");
        var m = a.ToArray();
        double scale = 0;
        for (int i = 0; i < m.Length; i++) scale = Math.Max(scale, Math.Abs(m[i]));
        for (int p = 0; p < n; p++)
        for (int q = p + 1; q < n; q++)
        {
            if (Math.Abs(m[p * n + q] - m[q * n + p]) > 1e-9 * Math.Max(scale, double.Epsilon))
                throw new ArgumentException($"the matrix is not symmetric: a[{p},{q}] = {m[p * n + q]}, a[{q},{p}] = {m[q * n + p]}.");
            double mean = 0.5 * (m[p * n + q] + m[q * n + p]);
            m[p * n + q] = m[q * n + p] = mean;
        }
        var v = new double[n * n];
        for (int i = 0; i < n; i++) v[i * n + i] = 1;

        for (int sweep = 0; sweep < MaxSweeps; sweep++)
        {
            double off = 0, total = 0;
            for (int p = 0; p < n; p++)
            for (int q = 0; q < n; q++)
            {
                double x = m[p * n + q] * m[p * n + q];
                total += x;
                if (p != q) off += x;
            }
            if (off <= 1e-30 * total || off == 0) break;
            for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++)
            {
                double apq = m[p * n + q];
                if (apq == 0) continue;
                // Choose t = tan(phi) of the smaller rotation angle that zeroes a[p,q]:
                // theta = (a_qq - a_pp) / (2 a_pq), t = sign(theta) / (|theta| + sqrt(theta^2 + 1)).
                double theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                // A <- J^T A J with J = identity except J[p,p] = J[q,q] = c, J[p,q] = s, J[q,p] = -s.
                for (int k = 0; k < n; k++)
                {
                    double akp = m[k * n + p], akq = m[k * n + q];
                    m[k * n + p] = c * akp - s * akq;
                    m[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++)
                {
                    double apk = m[p * n + k], aqk = m[q * n + k];
                    m[p * n + k] = c * apk - s * aqk;
                    m[q * n + k] = s * apk + c * aqk;
                }
                m[p * n + q] = m[q * n + p] = 0;
                for (int k = 0; k < n; k++)
                {
                    double vkp = v[k * n + p], vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }

        // Sort ascending, moving the eigenvector columns along.
        var order = Enumerable.Range(0, n).OrderBy(i => m[i * n + i]).ToArray();
        var values = new double[n];
        var vectors = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            values[j] = m[order[j] * n + order[j]];
            for (int k = 0; k < n; k++) vectors[k * n + j] = v[k * n + order[j]];
        }
        return (values, vectors);
    }

    /// <summary>V diag(f(w)) V^T for a decomposition (row-major (n, n)).</summary>
    public static double[] Compose(double[] values, double[] vectors, Func<double, double> f)
    {
        int n = values.Length;
        var fw = values.Select(f).ToArray();
        var result = new double[n * n];
        for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++)
        {
            double s = 0;
            for (int k = 0; k < n; k++) s += vectors[i * n + k] * fw[k] * vectors[j * n + k];
            result[i * n + j] = result[j * n + i] = s;
        }
        return result;
    }
}
