using MediatorDiT.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Evaluation;

/// <summary>
/// The paper's attention redundancy (Sec. 3.2, Fig. 1): the mean Jensen-Shannon divergence (natural log)
/// over all unordered pairs of query rows of an attention map (rows, cols), each row a distribution over
/// the keys. Low values mean the queries attend alike, i.e. the map is redundant.
/// Per pair, with s = p + q, e_p = sum p ln p and r_p = sum p:
///   JS(p, q) = 0.5 (e_p + e_q - sum s ln s) + 0.5 ln2 (r_p + r_q),
/// so only sum s ln s needs both rows. The pairs are visited in (tile x tile) blocks of query rows, the
/// blocks shared out over the threads; no more than one block's rows exist in float64 at a time per thread,
/// every sum is accumulated in float64, and the block sums are added in a fixed order, so the result does
/// not depend on the thread count.
/// </summary>
public static class AttentionRedundancy
{
    /// <summary>Query rows per side of a block of pairs; only speed depends on it, not the result.</summary>
    public const int DefaultTileRows = 32;

    // Replaces s = 0 before the logarithm so that 0 ln 0 = 0: any non-zero s here is a sum of float32 values,
    // at least 1.4e-45, far above this floor, so no other term changes.
    private const double LogFloor = 1e-300;

    [ThreadStatic] private static double[]? _rowsA, _rowsB, _sum, _log;

    /// <summary>Mean JS divergence over the rows*(rows-1)/2 unordered pairs of rows of <paramref name="map"/> (rows, cols).</summary>
    public static double MeanPairwiseJensenShannon(ReadOnlySpan<float> map, int rows, int cols, int tileRows = DefaultTileRows) =>
        MeanPairwiseJensenShannon(map.ToArray().AsMemory(), rows, cols, tileRows);

    /// <inheritdoc cref="MeanPairwiseJensenShannon(ReadOnlySpan{float}, int, int, int)"/>
    public static double MeanPairwiseJensenShannon(ReadOnlyMemory<float> mapMemory, int rows, int cols, int tileRows = DefaultTileRows)
    {
        var map = mapMemory.Span;
        Check(map.Length, rows, cols);
        if (tileRows <= 0) throw new ArgumentOutOfRangeException(nameof(tileRows), tileRows, "the tile must hold at least one row.");
        // Per-row terms once: e = sum p ln p and r = sum p, in float64.
        var selfTerms = new double[rows];
        var rowSums = new double[rows];
        var buffer = Buffer(ref _rowsA, cols);
        var logs = Buffer(ref _log, cols);
        for (int i = 0; i < rows; i++)
        {
            Widen(map.Slice(i * cols, cols), buffer);
            rowSums[i] = TensorPrimitives.Sum<double>(buffer.AsSpan(0, cols));
            selfTerms[i] = XLogXSum(buffer.AsSpan(0, cols), logs.AsSpan(0, cols));
        }

        int tiles = (rows + tileRows - 1) / tileRows;
        var blocks = new (int A, int B)[tiles * (tiles + 1) / 2];
        for (int a = 0, k = 0; a < tiles; a++)
        for (int b = a; b < tiles; b++)
            blocks[k++] = (a, b);
        var blockSums = new double[blocks.Length];
        ParallelLoop.For(blocks.Length, k =>
            blockSums[k] = BlockSum(mapMemory.Span, rows, cols, tileRows, blocks[k].A, blocks[k].B, selfTerms, rowSums));
        double total = 0;
        foreach (double s in blockSums) total += s;
        // JS >= 0; identical rows can come out a few 1e-16 below it from rounding.
        return Math.Max(0, total / (rows * (rows - 1.0) / 2.0));
    }

    /// <summary>Sum of JS(p_i, p_j) over the pairs i &lt; j with i in tile a and j in tile b (a &lt;= b).</summary>
    private static double BlockSum(ReadOnlySpan<float> map, int rows, int cols, int tileRows, int a, int b,
        double[] selfTerms, double[] rowSums)
    {
        int a0 = a * tileRows, aRows = Math.Min(tileRows, rows - a0);
        int b0 = b * tileRows, bRows = Math.Min(tileRows, rows - b0);
        var rowsA = Buffer(ref _rowsA, tileRows * cols);
        var rowsB = Buffer(ref _rowsB, tileRows * cols);
        var sum = Buffer(ref _sum, cols).AsSpan(0, cols);
        var logs = Buffer(ref _log, cols).AsSpan(0, cols);
        Widen(map.Slice(a0 * cols, aRows * cols), rowsA);
        if (a != b) Widen(map.Slice(b0 * cols, bRows * cols), rowsB);
        var second = a == b ? rowsA : rowsB;
        double half = 0.5, halfLn2 = 0.5 * Math.Log(2.0), total = 0;
        for (int i = 0; i < aRows; i++)
        {
            var p = rowsA.AsSpan(i * cols, cols);
            for (int j = a == b ? i + 1 : 0; j < bRows; j++)
            {
                TensorPrimitives.Add<double>(p, second.AsSpan(j * cols, cols), sum);
                double mixed = XLogXSum(sum, logs);
                int gi = a0 + i, gj = b0 + j;
                total += half * (selfTerms[gi] + selfTerms[gj] - mixed) + halfLn2 * (rowSums[gi] + rowSums[gj]);
            }
        }
        return total;
    }

    /// <summary>sum x ln x with 0 ln 0 = 0; <paramref name="scratch"/> is as long as x.</summary>
    private static double XLogXSum(ReadOnlySpan<double> x, Span<double> scratch)
    {
        TensorPrimitives.Max<double>(x, LogFloor, scratch);
        TensorPrimitives.Log<double>(scratch, scratch);
        return TensorPrimitives.Dot<double>(x, scratch);
    }

    private static void Widen(ReadOnlySpan<float> from, double[] to)
    {
        for (int k = 0; k < from.Length; k++) to[k] = from[k];
    }

    private static double[] Buffer(ref double[]? slot, int length)
    {
        if (slot is null || slot.Length < length) slot = new double[length];
        return slot;
    }

    private static void Check(int length, int rows, int cols)
    {
        if (rows < 2) throw new MediatorDiTException($"the redundancy of an attention map needs at least two query rows, got {rows}.");
        if (cols < 1 || length != rows * cols)
            throw new MediatorDiTException($"the attention map holds {length} values, not {rows} x {cols}.");
    }

    /// <summary>
    /// The plain computation the tiled one is tested against: every pair, every key, in float64, as the
    /// definition reads (0.5 KL(p || m) + 0.5 KL(q || m), m = (p + q) / 2, terms with p = 0 dropped).
    /// </summary>
    public static double ReferenceMeanPairwiseJensenShannon(ReadOnlySpan<float> map, int rows, int cols)
    {
        Check(map.Length, rows, cols);
        double total = 0;
        for (int i = 0; i < rows; i++)
        for (int j = i + 1; j < rows; j++)
        {
            double js = 0;
            for (int k = 0; k < cols; k++)
            {
                double p = map[i * cols + k], q = map[j * cols + k], m = 0.5 * (p + q);
                if (p > 0) js += 0.5 * p * Math.Log(p / m);
                if (q > 0) js += 0.5 * q * Math.Log(q / m);
            }
            total += js;
        }
        return Math.Max(0, total / (rows * (rows - 1.0) / 2.0));
    }
}
