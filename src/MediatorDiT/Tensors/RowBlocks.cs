namespace MediatorDiT.Tensors;

/// <summary>
/// Splits token rows into blocks for fused row-wise chains (LayerNorm, modulation, a GEMM, its activation
/// and the gated residual run on one block while it is in cache). About four blocks per thread so the
/// dynamic claiming of <see cref="ParallelLoop"/> evens out the cores, 32 to 256 rows each (a multiple of
/// 8, the micro-kernel's rows). The split comes from the row count alone (about 8 blocks: four per thread
/// on two threads), never from the thread count: the managed GEMM's results do not depend on the row split,
/// but OpenBLAS's do, and 1 and N threads must give the same bits. Smaller blocks cost a single thread time
/// with OpenBLAS (each call packs the weights again): 16 blocks made the 1-thread AVX2 forward 12-35% slower (two runs).
/// </summary>
internal static class RowBlocks
{
    public const int MinRows = 32, MaxRows = 256;

    private const int TargetBlocks = 8;

    // Built once per row count: the hot path allocates nothing.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, (int, int)[]> Cache = new();

    public static IReadOnlyList<(int Start, int End)> For(int rows) => Cache.GetOrAdd(rows, Build);

    private static (int, int)[] Build(int rows)
    {
        int per = (rows + TargetBlocks - 1) / TargetBlocks;
        per = Math.Clamp((per + 7) / 8 * 8, MinRows, MaxRows);
        var blocks = new (int, int)[(rows + per - 1) / per];
        for (int i = 0; i < blocks.Length; i++) blocks[i] = (i * per, Math.Min(rows, (i + 1) * per));
        return blocks;
    }
}
