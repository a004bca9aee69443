namespace MediatorDiT.Tensors;

/// <summary>
/// Splits token rows into blocks for fused row-wise chains (LayerNorm, modulation, a GEMM, its activation
/// and the gated residual run on one block while it is in cache). About four blocks per thread so the
/// dynamic claiming of <see cref="ParallelLoop"/> evens out the cores, 32 to 256 rows each (a multiple of
/// 8, the micro-kernel's rows). GEMM results do not depend on the row split.
/// </summary>
public static class RowBlocks
{
    public const int MinRows = 32, MaxRows = 256;

    public static IReadOnlyList<(int Start, int End)> For(int rows) => For(rows, ComputeSettings.Threads);

    // Built once per (rows, threads): the hot path allocates nothing.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int, int), (int, int)[]> Cache = new();

    public static IReadOnlyList<(int Start, int End)> For(int rows, int threads) => Cache.GetOrAdd((rows, Math.Max(1, threads)), Build);

    private static (int, int)[] Build((int Rows, int Threads) key)
    {
        var (rows, threads) = key;
        int per = (rows + 4 * threads - 1) / (4 * Math.Max(1, threads));
        per = Math.Clamp((per + 7) / 8 * 8, MinRows, MaxRows);
        var blocks = new (int, int)[(rows + per - 1) / per];
        for (int i = 0; i < blocks.Length; i++) blocks[i] = (i * per, Math.Min(rows, (i + 1) * per));
        return blocks;
    }
}
