using System.Runtime.CompilerServices;
using ILGPU;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// Full attention's backward as two fused kernels on the tensor cores (FlashAttention-2's backward, made deterministic):
/// from head-major bf16 q, k, v and dO (items, N, hd), the forward's lse and delta = rowsum(dO O) (items, N),
/// <see cref="BackwardKeys"/> makes dK and dV a block of 64 keys per group, walking the queries 32 at a time, and
/// <see cref="BackwardQueries"/> makes dQ a block of 64 queries per group, walking the keys 32 at a time. Each makes
/// the logits and P = exp(s q k - lse) again in registers, dP = dO V^T and dS = P (dP - delta), and adds its products:
/// dV += P^T dO and dK += s dS^T Q, or dQ += s dS K. Every output element is written by one group, in a fixed order, so
/// runs give the same bits (FlashAttention's single kernel adds dQ with atomics instead, in no fixed order); the price
/// is making S and dP twice. P and dS are rounded to bf16 where the products read them, as the tiles round them.
/// The logits are 16 x 32 per warp; heads of at most <see cref="MaxHeadDim"/> channels keep a lane's fragments (two
/// operands of 5 k-steps, two accumulators of 10 channel tiles) within the registers.
/// </summary>
internal static partial class FlashMmaKernels
{
    /// <summary>The rows of the other side staged at a time in the backward (queries for dK and dV, keys for dQ).</summary>
    public const int BackwardBlock = 32;
    private const int BackwardColumnStride = BackwardBlock / 2 + 8; // 8 mod 32 registers: see RowStride

    /// <summary>
    /// dK (items, N, hd) = s dS^T Q and dV = P^T dO (see the class): group i = item keyBlocks + block of 64 keys, 4 warps
    /// of 16 keys; each warp's logits are S^T = K Q^T (its keys the rows), so P^T and dS^T are operand fragments as made.
    /// </summary>
    /// <typeparam name="THead">The head width compiled for (<see cref="IFlashHead"/>; <paramref name="headDim"/> must be it where it is a constant).</typeparam>
    public static void BackwardKeys<THead>(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> dO, ArrayView<float> lse,
        ArrayView<float> delta, ArrayView<float> dk, ArrayView<float> dv, int tokens, int headDim, int keyBlocks, float scale)
        where THead : struct, IFlashHead
    {
        var queryRows = SharedMemory.Allocate<ulong>(BackwardBlock * RowStride / 2);
        var gradientRows = SharedMemory.Allocate<ulong>(BackwardBlock * RowStride / 2);
        var queryColumns = SharedMemory.Allocate<ulong>(MaxHeadDim * BackwardColumnStride / 2);
        var gradientColumns = SharedMemory.Allocate<ulong>(MaxHeadDim * BackwardColumnStride / 2);
        var lse2 = SharedMemory.Allocate<float>(BackwardBlock);
        var deltas = SharedMemory.Allocate<float>(BackwardBlock);
        int item = Grid.IdxX / keyBlocks, keyBlock = Grid.IdxX % keyBlocks;
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3, thread = Group.IdxX;
        int n = tokens, hd = default(THead).Width(headDim), pairs = hd / 2, kSteps = (hd + 15) / 16, channelTiles = (hd + 7) / 8;
        bool wide = default(THead).Wide;
        long itemBase = (long)item * n * hd;
        int keyA = keyBlock * Rows + Warp.WarpIdx * 16 + g, keyB = keyA + 8;
        float scale2 = scale * Log2E;

        var keys = LoadOperands(k, itemBase, keyA, keyB, n, pairs, kSteps, t);
        var values = LoadOperands(v, itemBase, keyA, keyB, n, pairs, kSteps, t);

        var dK = new ChannelTiles();
        var dV = new ChannelTiles();
        if (wide)
        {
            ZeroPadding(queryRows.Cast<uint>(), BackwardBlock, RowStride, pairs, kSteps * 8, thread);
            ZeroPadding(gradientRows.Cast<uint>(), BackwardBlock, RowStride, pairs, kSteps * 8, thread);
        }
        for (int query0 = 0; query0 < n; query0 += BackwardBlock)
        {
            Group.Barrier();
            StageRows(queryRows.Cast<uint>(), q, itemBase, query0, BackwardBlock, RowStride, n, pairs, kSteps * 8, thread, wide);
            StageRows(gradientRows.Cast<uint>(), dO, itemBase, query0, BackwardBlock, RowStride, n, pairs, kSteps * 8, thread, wide);
            StageColumns(queryColumns.Cast<uint>(), q, itemBase, query0, BackwardBlock, BackwardColumnStride, n, hd, channelTiles * 8, thread, wide);
            StageColumns(gradientColumns.Cast<uint>(), dO, itemBase, query0, BackwardBlock, BackwardColumnStride, n, hd, channelTiles * 8, thread, wide);
            if (thread < BackwardBlock)
            {
                int row = query0 + thread;
                lse2[thread] = row < n ? lse[(long)item * n + row] * Log2E : float.PositiveInfinity; // past the queries: P = 0
                deltas[thread] = row < n ? delta[(long)item * n + row] : 0f;
            }
            Group.Barrier();

            // S^T and dP^T (16 keys x 32 queries): tile j's columns are queries query0 + 8 j + 2 t (+ 1).
            var s = BlockProducts(keys, queryRows, kSteps, g, t);
            var dp = BlockProducts(values, gradientRows, kSteps, g, t);
            ColumnGradients(ref s, ref dp, lse2, deltas, scale2, t);

            var p = new BlockFragments { K0 = Operand(s.T0, s.T1), K1 = Operand(s.T2, s.T3) };
            AccumulateBlock(ref dV, p, gradientColumns, channelTiles, g, t);
            var ds = new BlockFragments { K0 = Operand(dp.T0, dp.T1), K1 = Operand(dp.T2, dp.T3) };
            AccumulateBlock(ref dK, ds, queryColumns, channelTiles, g, t);
        }

        Store(dK, dk, itemBase, keyA, keyB, n, hd, scale, scale, t);
        Store(dV, dv, itemBase, keyA, keyB, n, hd, 1f, 1f, t);
    }

    /// <summary>
    /// dQ (items, N, hd) = s dS K (see the class): group i = item rowBlocks + block of 64 queries, 4 warps of 16 rows;
    /// each warp's logits are S = Q K^T, with its rows' lse and delta in registers.
    /// </summary>
    /// <typeparam name="THead">The head width compiled for (<see cref="IFlashHead"/>; <paramref name="headDim"/> must be it where it is a constant).</typeparam>
    public static void BackwardQueries<THead>(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> dO, ArrayView<float> lse,
        ArrayView<float> delta, ArrayView<float> dq, int tokens, int headDim, int rowBlocks, float scale)
        where THead : struct, IFlashHead
    {
        var keyRows = SharedMemory.Allocate<ulong>(BackwardBlock * RowStride / 2);
        var valueRows = SharedMemory.Allocate<ulong>(BackwardBlock * RowStride / 2);
        var keyColumns = SharedMemory.Allocate<ulong>(MaxHeadDim * BackwardColumnStride / 2);
        int item = Grid.IdxX / rowBlocks, rowBlock = Grid.IdxX % rowBlocks;
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3, thread = Group.IdxX;
        int n = tokens, hd = default(THead).Width(headDim), pairs = hd / 2, kSteps = (hd + 15) / 16, channelTiles = (hd + 7) / 8;
        bool wide = default(THead).Wide;
        long itemBase = (long)item * n * hd;
        int rowA = rowBlock * Rows + Warp.WarpIdx * 16 + g, rowB = rowA + 8;
        float scale2 = scale * Log2E;
        // Past the rows: any finite values (nothing of those rows is stored).
        float lseA = rowA < n ? lse[(long)item * n + rowA] * Log2E : 0f, lseB = rowB < n ? lse[(long)item * n + rowB] * Log2E : 0f;
        float deltaA = rowA < n ? delta[(long)item * n + rowA] : 0f, deltaB = rowB < n ? delta[(long)item * n + rowB] : 0f;

        var queries = LoadOperands(q, itemBase, rowA, rowB, n, pairs, kSteps, t);
        var gradients = LoadOperands(dO, itemBase, rowA, rowB, n, pairs, kSteps, t);

        var dQ = new ChannelTiles();
        if (wide)
        {
            ZeroPadding(keyRows.Cast<uint>(), BackwardBlock, RowStride, pairs, kSteps * 8, thread);
            ZeroPadding(valueRows.Cast<uint>(), BackwardBlock, RowStride, pairs, kSteps * 8, thread);
        }
        for (int key0 = 0; key0 < n; key0 += BackwardBlock)
        {
            Group.Barrier();
            StageRows(keyRows.Cast<uint>(), k, itemBase, key0, BackwardBlock, RowStride, n, pairs, kSteps * 8, thread, wide);
            StageRows(valueRows.Cast<uint>(), v, itemBase, key0, BackwardBlock, RowStride, n, pairs, kSteps * 8, thread, wide);
            StageColumns(keyColumns.Cast<uint>(), k, itemBase, key0, BackwardBlock, BackwardColumnStride, n, hd, channelTiles * 8, thread, wide);
            Group.Barrier();

            var s = BlockProducts(queries, keyRows, kSteps, g, t);
            var dp = BlockProducts(gradients, valueRows, kSteps, g, t);
            int limit = n - key0 - 2 * t; // tile j's columns 8 j + 2 t (+ 1) are keys when below this
            RowGradients(ref s, ref dp, scale2, lseA, lseB, deltaA, deltaB, limit);

            var ds = new BlockFragments { K0 = Operand(dp.T0, dp.T1), K1 = Operand(dp.T2, dp.T3) };
            AccumulateBlock(ref dQ, ds, keyColumns, channelTiles, g, t);
        }

        Store(dQ, dq, itemBase, rowA, rowB, n, hd, scale, scale, t);
    }

    /// <summary>A warp's 16 x 32 block (4 tiles) from its rows' fragments and the staged rows (<see cref="Products"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static BlockTiles BlockProducts(HeadFragments a, ArrayView<ulong> rows, int kSteps, int g, int t)
    {
        var x = new BlockTiles();
        Products(ref x.T0, a, rows, 0, kSteps, g, t);
        Products(ref x.T1, a, rows, 1, kSteps, g, t);
        Products(ref x.T2, a, rows, 2, kSteps, g, t);
        Products(ref x.T3, a, rows, 3, kSteps, g, t);
        return x;
    }

    /// <summary><see cref="ColumnGradients(ref MmaAccumulator, ref MmaAccumulator, ArrayView{float}, ArrayView{float}, float, int)"/> over the block: tile j's columns 8 j + 2 t (+ 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnGradients(ref BlockTiles s, ref BlockTiles dp, ArrayView<float> lse2, ArrayView<float> deltas, float scale2, int t)
    {
        ColumnGradients(ref s.T0, ref dp.T0, lse2, deltas, scale2, 2 * t);
        ColumnGradients(ref s.T1, ref dp.T1, lse2, deltas, scale2, 8 + 2 * t);
        ColumnGradients(ref s.T2, ref dp.T2, lse2, deltas, scale2, 16 + 2 * t);
        ColumnGradients(ref s.T3, ref dp.T3, lse2, deltas, scale2, 24 + 2 * t);
    }

    /// <summary><see cref="RowGradients(ref MmaAccumulator, ref MmaAccumulator, float, float, float, float, float, int)"/> over the block: tile j's columns are keys below limit - 8 j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowGradients(ref BlockTiles s, ref BlockTiles dp, float scale2, float lseA, float lseB, float deltaA, float deltaB, int limit)
    {
        RowGradients(ref s.T0, ref dp.T0, scale2, lseA, lseB, deltaA, deltaB, limit);
        RowGradients(ref s.T1, ref dp.T1, scale2, lseA, lseB, deltaA, deltaB, limit - 8);
        RowGradients(ref s.T2, ref dp.T2, scale2, lseA, lseB, deltaA, deltaB, limit - 16);
        RowGradients(ref s.T3, ref dp.T3, scale2, lseA, lseB, deltaA, deltaB, limit - 24);
    }

    /// <summary>A gradient accumulator += the block's operand fragments times the staged columns, tile by tile (<see cref="AccumulateBlock(ref MmaAccumulator, BlockFragments, ArrayView{ulong}, int, int, int, int)"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateBlock(ref ChannelTiles acc, BlockFragments a, ArrayView<ulong> columns, int channelTiles, int g, int t)
    {
        var step = new BlockStep(a, columns, channelTiles, g, t);
        ForEachTile(ref acc, ref step);
    }

    /// <summary><see cref="AccumulateBlock(ref MmaAccumulator, BlockFragments, ArrayView{ulong}, int, int, int, int)"/> as a tile operation.</summary>
    private readonly struct BlockStep(BlockFragments a, ArrayView<ulong> columns, int channelTiles, int g, int t) : ITileOperation
    {
        public void Apply(ref MmaAccumulator tile, int index) => AccumulateBlock(ref tile, a, columns, index, channelTiles, g, t);
    }

    /// <summary>
    /// P^T = 2^(s scale2 - lse2) and dS^T = P^T (dP^T - delta) in place, for the two queries (columns) <paramref name="column"/>
    /// and <paramref name="column"/> + 1 of the staged block (their lse2 and delta in shared memory).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnGradients(ref MmaAccumulator s, ref MmaAccumulator dp, ArrayView<float> lse2, ArrayView<float> deltas, float scale2, int column)
    {
        float lse0 = lse2[column], lse1 = lse2[column + 1], delta0 = deltas[column], delta1 = deltas[column + 1];
        s.C0 = Exp2(s.C0 * scale2 - lse0);
        s.C1 = Exp2(s.C1 * scale2 - lse1);
        s.C2 = Exp2(s.C2 * scale2 - lse0);
        s.C3 = Exp2(s.C3 * scale2 - lse1);
        dp.C0 = s.C0 * (dp.C0 - delta0);
        dp.C1 = s.C1 * (dp.C1 - delta1);
        dp.C2 = s.C2 * (dp.C2 - delta0);
        dp.C3 = s.C3 * (dp.C3 - delta1);
    }

    /// <summary>
    /// P = 2^(s scale2 - lse2) (0 for columns that are not keys: below <paramref name="limit"/> they are) and
    /// dS = P (dP - delta) in place, rows A and B with their own lse2 and delta.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowGradients(ref MmaAccumulator s, ref MmaAccumulator dp, float scale2, float lseA, float lseB, float deltaA, float deltaB, int limit)
    {
        s.C0 = limit > 0 ? Exp2(s.C0 * scale2 - lseA) : 0f;
        s.C1 = limit > 1 ? Exp2(s.C1 * scale2 - lseA) : 0f;
        s.C2 = limit > 0 ? Exp2(s.C2 * scale2 - lseB) : 0f;
        s.C3 = limit > 1 ? Exp2(s.C3 * scale2 - lseB) : 0f;
        dp.C0 = s.C0 * (dp.C0 - deltaA);
        dp.C1 = s.C1 * (dp.C1 - deltaA);
        dp.C2 = s.C2 * (dp.C2 - deltaB);
        dp.C3 = s.C3 * (dp.C3 - deltaB);
    }

    /// <summary>Gradient tile <paramref name="tile"/> (channels 8 tile ..) += the block's operand fragments (32 rows of the other side) times the staged columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateBlock(ref MmaAccumulator acc, BlockFragments a, ArrayView<ulong> columns, int tile, int channelTiles, int g, int t)
    {
        if (tile >= channelTiles) return;
        var b = columns.SubView((8 * tile + g) * (BackwardColumnStride / 2) + t, 5); // (b0, b1) of step s at 4 s
        Bf16(ref acc, a.K0, b[0]);
        Bf16(ref acc, a.K1, b[4]);
    }

    /// <summary>P's or dS's operand fragments over a staged block's 32 rows: 2 k-steps.</summary>
    private struct BlockFragments
    {
        public MmaOperandA K0, K1;
    }

    /// <summary>A warp's 16 x 32 logits (or dP) against a staged block: 4 tiles of 8.</summary>
    private struct BlockTiles
    {
        public MmaAccumulator T0, T1, T2, T3;
    }
}
