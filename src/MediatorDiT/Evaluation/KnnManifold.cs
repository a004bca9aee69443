using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// The k-nearest-neighbour estimate of a feature manifold of Kynkaanniemi et al. (2019), "Improved
/// Precision and Recall Metric for Assessing Generative Models": the union of the balls around each
/// point whose radius is the distance to that point's k-th nearest other point. A query lies on the
/// manifold when it falls in at least one ball (distance &lt;= radius). Squared Euclidean distances come
/// from |a|^2 + |b|^2 - 2 a.b with the dot products as float32 GEMM blocks (clamped at zero);
/// norms are accumulated in float64.
/// </summary>
public sealed class KnnManifold
{
    private const int Block = 1024;

    private KnnManifold(float[] points, int count, int dimension, int k, float[] radiiSquared)
    {
        Points = points;
        Count = count;
        Dimension = dimension;
        K = k;
        RadiiSquared = radiiSquared;
        Norms = SquaredNorms(points, count, dimension);
    }

    /// <summary>The feature vectors (Count, Dimension), row-major.</summary>
    public float[] Points { get; }
    /// <summary>Points on the manifold.</summary>
    public int Count { get; }
    /// <summary>Features per point.</summary>
    public int Dimension { get; }
    /// <summary>The neighbour whose distance sets each ball's radius.</summary>
    public int K { get; }

    /// <summary>Squared distance of each point to its k-th nearest other point.</summary>
    public float[] RadiiSquared { get; }

    private float[] Norms { get; }

    /// <summary>Builds the manifold of points (N, D) with N &gt; k.</summary>
    public static KnnManifold Build(float[] points, int count, int dimension, int k = 3, CancellationToken cancellationToken = default)
    {
        if (k < 1) throw new MediatorDiTException($"the neighbourhood size k must be at least 1, got {k}.");
        if (count <= k) throw new MediatorDiTException($"a k-nearest-neighbour manifold with k = {k} needs more than {k} points, got {count}.");
        if (points.Length != (long)count * dimension) throw new ArgumentException($"points hold {points.Length} values, not {count} x {dimension}.");
        var norms = SquaredNorms(points, count, dimension);
        var radii = new float[count];
        int blocks = (count + Block - 1) / Block;
        var distances = new float[Block * (long)Math.Min(count, Block)];
        for (int qb = 0; qb < blocks; qb++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int q0 = qb * Block, qn = Math.Min(Block, count - q0);
            // The k smallest distances to other points seen so far, per query, ascending.
            var best = new float[qn * k];
            Array.Fill(best, float.PositiveInfinity);
            for (int pb = 0; pb < blocks; pb++)
            {
                int p0 = pb * Block, pn = Math.Min(Block, count - p0);
                SquaredDistances(points, norms, q0, qn, points, norms, p0, pn, dimension, distances);
                ParallelLoop.For(qn, i =>
                {
                    var row = distances.AsSpan(i * pn, pn);
                    var top = best.AsSpan(i * k, k);
                    for (int j = 0; j < pn; j++)
                    {
                        if (p0 + j == q0 + i) continue; // not its own neighbour
                        Insert(top, row[j]);
                    }
                });
            }
            for (int i = 0; i < qn; i++) radii[q0 + i] = best[i * k + k - 1];
        }
        return new KnnManifold(points, count, dimension, k, radii);
    }

    /// <summary>Restores a manifold from stored points and radii (no neighbour search).</summary>
    public static KnnManifold FromStored(float[] points, int count, int dimension, int k, float[] radiiSquared)
    {
        if (points.Length != (long)count * dimension || radiiSquared.Length != count)
            throw new ArgumentException($"stored manifold: {points.Length} point values and {radiiSquared.Length} radii do not fit {count} x {dimension}.");
        return new KnnManifold(points, count, dimension, k, radiiSquared);
    }

    /// <summary>For each query (M, D): whether it lies in some point's ball.</summary>
    public bool[] Contains(float[] queries, int count, CancellationToken cancellationToken = default)
    {
        if (queries.Length != (long)count * Dimension) throw new ArgumentException($"queries hold {queries.Length} values, not {count} x {Dimension}.");
        var inside = new bool[count];
        var qNorms = SquaredNorms(queries, count, Dimension);
        var distances = new float[Block * (long)Math.Min(Count, Block)];
        for (int q0 = 0; q0 < count; q0 += Block)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int qn = Math.Min(Block, count - q0);
            for (int p0 = 0; p0 < Count; p0 += Block)
            {
                int pn = Math.Min(Block, Count - p0);
                SquaredDistances(queries, qNorms, q0, qn, Points, Norms, p0, pn, Dimension, distances);
                ParallelLoop.For(qn, i =>
                {
                    if (inside[q0 + i]) return;
                    var row = distances.AsSpan(i * pn, pn);
                    for (int j = 0; j < pn; j++)
                        if (row[j] <= RadiiSquared[p0 + j]) { inside[q0 + i] = true; break; }
                });
            }
        }
        return inside;
    }

    /// <summary>The fraction of queries on the manifold.</summary>
    public double Coverage(float[] queries, int count, CancellationToken cancellationToken = default)
    {
        if (count == 0) return double.NaN;
        var inside = Contains(queries, count, cancellationToken);
        return (double)inside.Count(x => x) / count;
    }

    /// <summary>d (qn, pn) = |q_i|^2 + |p_j|^2 - 2 q_i.p_j, clamped at zero.</summary>
    private static void SquaredDistances(float[] q, float[] qNorms, int q0, int qn, float[] p, float[] pNorms, int p0, int pn, int dimension, float[] d)
    {
        Gemm.Sgemm(false, true, qn, pn, dimension, -2f, q.AsSpan(q0 * dimension, qn * dimension), dimension,
            p.AsSpan(p0 * dimension, pn * dimension), dimension, 0f, d.AsSpan(0, qn * pn), pn);
        for (int i = 0; i < qn; i++)
        {
            var row = d.AsSpan(i * pn, pn);
            float qi = qNorms[q0 + i];
            for (int j = 0; j < pn; j++) row[j] = Math.Max(0f, row[j] + qi + pNorms[p0 + j]);
        }
    }

    private static float[] SquaredNorms(float[] points, int count, int dimension)
    {
        var norms = new float[count];
        for (int i = 0; i < count; i++)
        {
            double s = 0;
            var row = points.AsSpan(i * dimension, dimension);
            for (int d = 0; d < dimension; d++) s += (double)row[d] * row[d];
            norms[i] = (float)s;
        }
        return norms;
    }

    /// <summary>Keeps <paramref name="top"/> the ascending list of the smallest values seen.</summary>
    private static void Insert(Span<float> top, float value)
    {
        int k = top.Length;
        if (!(value < top[k - 1])) return;
        int i = k - 1;
        while (i > 0 && top[i - 1] > value)
        {
            top[i] = top[i - 1];
            i--;
        }
        top[i] = value;
    }
}
