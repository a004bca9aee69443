using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// Full attention's forward as one fused kernel on the tensor cores (FlashAttention-2's forward): per (image, head) item
/// and block of 64 query rows, a group of 4 warps, each warp 16 rows. It walks the keys 64 at a time: K's and V's block
/// are staged in shared memory in bf16 (V transposed, so a lane's two keys of one channel are one register; a lane's
/// two B registers side by side, one 64-bit load), the warp
/// makes its 16 x 64 logits S = s Q K^T with <see cref="WarpMma"/> (Q's fragments stay in registers from the start), keeps
/// the online softmax's running maximum and sum per row, rescales its output accumulator when the maximum grows, rounds
/// the exponentials P to bf16 where they are (an accumulator fragment of S is the operand fragment of P V, no exchange
/// needed) and adds P V. Nothing N x N is stored: the logits live in registers, 64 keys at a time. At the end O = acc / sum
/// and lse = max + ln(sum), as <see cref="AttentionKernels.FlashAttention"/> (the reference) saves them. The exponentials
/// are base 2 of logits scaled by s log2(e), on CUDA the special-function unit's `ex2.approx` (relative error about
/// 2^-22, far below P's bf16 rounding), as FlashAttention computes them: a polynomial exp per logit would cost more
/// instructions than the tensor cores' products.
/// Inputs are head-major bf16 (B H, N, hd), as the products path moves them; o is head-major fp32, lse (B H, N).
/// hd must be even and at most <see cref="MaxHeadDim"/> (SiT's and DiT's 64 and 72); Q K^T pads hd to a multiple of 16
/// with zeros, P V covers it in tiles of 8 channels. The fragments are fields of structs written out tile by tile rather
/// than arrays indexed in loops: ILGPU 1.5.3 does not unroll loops, and an array indexed by a loop variable lives in
/// local memory, where these must stay in registers (the PTX test checks that the kernels' only local memory is ILGPU's
/// scalar slot per inline-instruction operand, which <see cref="InlineOperandSlots"/> makes a register before loading).
/// </summary>
internal static partial class FlashMmaKernels
{
    /// <summary>
    /// The widest head: 5 k-steps of 16 channels, 10 tiles of 8. Compiled for any width (<see cref="AnyFlashHead"/>), a lane
    /// holds the widest head's fragments whatever the head (the tiles past it are skipped at run time), so the limit
    /// sets that kernel's registers; SiT's and DiT's 64 and 72 channels have kernels of their own (<see cref="FlashHeads"/>).
    /// </summary>
    public const int MaxHeadDim = 80;

    /// <summary>Kernel <paramref name="name"/> (<see cref="Forward"/>, <see cref="BackwardKeys"/>, <see cref="BackwardQueries"/>) compiled for head type <paramref name="head"/> (<see cref="FlashHeads"/>).</summary>
    public static System.Reflection.MethodInfo Instance(string name, Type head) =>
        (typeof(FlashMmaKernels).GetMethod(name) ?? throw new ArgumentException($"FlashMmaKernels has no kernel {name}", nameof(name))).MakeGenericMethod(head);

    /// <summary>Whether the kernels take heads of <paramref name="headDim"/> channels: even (channel pairs fill a register) and at most <see cref="MaxHeadDim"/>.</summary>
    public static bool TakesHead(int headDim) => headDim > 0 && headDim % 2 == 0 && headDim <= MaxHeadDim;
    /// <summary>Keys per block staged in shared memory; query rows per group (4 warps of 16).</summary>
    public const int Keys = 64, Rows = 64, Warps = 4;
    // Staged blocks hold each lane's two B registers side by side (Paired), read as one 64-bit load. A row's stride is
    // 8 mod 32 registers, so the 16 lanes of a half warp (one 64-bit transaction: groups g = 0..3, t = 0..3) read
    // registers 8 g + 2 t, + 1 of 32 different banks.
    private const int RowStride = MaxHeadDim / 2, ValueStride = Keys / 2 + 8;
    private const float Log2E = 1.44269504088896341f, Ln2 = 0.693147180559945309f;

    /// <summary>
    /// The kernel (see the class): groups of <see cref="Warps"/> warps of 32 lanes, group i = item rowBlocks + row block.
    /// </summary>
    /// <typeparam name="THead">The head width compiled for (<see cref="IFlashHead"/>; <paramref name="headDim"/> must be it where it is a constant).</typeparam>
    public static void Forward<THead>(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> o, ArrayView<float> lse,
        int tokens, int headDim, int rowBlocks, float scale)
        where THead : struct, IFlashHead
    {
        var keyBlock = SharedMemory.Allocate<ulong>(Keys * RowStride / 2); // 8-byte aligned for the 64-bit loads
        var valueBlock = SharedMemory.Allocate<ulong>(MaxHeadDim * ValueStride / 2);
        int item = Grid.IdxX / rowBlocks, rowBlock = Grid.IdxX % rowBlocks;
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3, thread = Group.IdxX;
        int n = tokens, hd = default(THead).Width(headDim), pairs = hd / 2, kSteps = (hd + 15) / 16, channelTiles = (hd + 7) / 8;
        bool wide = default(THead).Wide;
        long itemBase = (long)item * n * hd;
        int rowA = rowBlock * Rows + Warp.WarpIdx * 16 + g, rowB = rowA + 8;

        var query = LoadOperands(q, itemBase, rowA, rowB, n, pairs, kSteps, t);
        var acc = new ChannelTiles();
        float maxA = float.NegativeInfinity, maxB = float.NegativeInfinity, sumA = 0f, sumB = 0f; // maxima in log2 units
        float scale2 = scale * Log2E;
        if (wide) ZeroPadding(keyBlock.Cast<uint>(), Keys, RowStride, pairs, kSteps * 8, thread); // before the loop's first barrier
        for (int key0 = 0; key0 < n; key0 += Keys)
        {
            Group.Barrier(); // the previous block's readers are done
            StageRows(keyBlock.Cast<uint>(), k, itemBase, key0, Keys, RowStride, n, pairs, kSteps * 8, thread, wide);
            StageColumns(valueBlock.Cast<uint>(), v, itemBase, key0, Keys, ValueStride, n, hd, channelTiles * 8, thread, wide);
            Group.Barrier();

            var s = KeyProducts(query, keyBlock, kSteps, g, t);
            if (key0 + Keys > n) Mask(ref s, n - key0 - 2 * t); // the last block only: tile j's columns 8 j + 2 t (+ 1) are keys when below this

            // The rows' new maxima over the 4 lanes of a group (lanes 4 g .. 4 g + 3 hold row g's columns), of the
            // logits as made, then scaled: scale2 > 0 and rounding is monotonic, so this is the largest scaled logit
            // exactly, and each exponential below takes one fused multiply-add, s scale2 - max, on a card.
            float blockA = scale2 * RowMax(s.T0.C0, s.T0.C1, s.T1.C0, s.T1.C1, s.T2.C0, s.T2.C1, s.T3.C0, s.T3.C1,
                s.T4.C0, s.T4.C1, s.T5.C0, s.T5.C1, s.T6.C0, s.T6.C1, s.T7.C0, s.T7.C1);
            float blockB = scale2 * RowMax(s.T0.C2, s.T0.C3, s.T1.C2, s.T1.C3, s.T2.C2, s.T2.C3, s.T3.C2, s.T3.C3,
                s.T4.C2, s.T4.C3, s.T5.C2, s.T5.C3, s.T6.C2, s.T6.C3, s.T7.C2, s.T7.C3);
            float newA = MathF.Max(maxA, blockA), newB = MathF.Max(maxB, blockB);
            float alphaA = Exp2(maxA - newA), alphaB = Exp2(maxB - newB); // 0 at the first block (max = -inf)
            maxA = newA;
            maxB = newB;

            float partA = 0f, partB = 0f;
            Exponentials(ref s, scale2, newA, newB, ref partA, ref partB);
            sumA = sumA * alphaA + partA; // this lane's share of the row's sum; the 4 lanes' shares are added at the end
            sumB = sumB * alphaB + partB;

            var p = new ProbabilityFragments();
            p.K0 = Operand(s.T0, s.T1);
            p.K1 = Operand(s.T2, s.T3);
            p.K2 = Operand(s.T4, s.T5);
            p.K3 = Operand(s.T6, s.T7);

            Accumulate(ref acc, p, valueBlock, channelTiles, alphaA, alphaB, g, t);
        }

        sumA += Warp.ShuffleXor(sumA, 1);
        sumA += Warp.ShuffleXor(sumA, 2);
        sumB += Warp.ShuffleXor(sumB, 1);
        sumB += Warp.ShuffleXor(sumB, 2);
        float invA = 1f / sumA, invB = 1f / sumB;
        Store(acc, o, itemBase, rowA, rowB, n, hd, invA, invB, t);
        if (t == 0)
        {
            if (rowA < n) lse[(long)item * n + rowA] = maxA * Ln2 + DeviceMath.Log(sumA);
            if (rowB < n) lse[(long)item * n + rowB] = maxB * Ln2 + DeviceMath.Log(sumB);
        }
    }

    /// <summary>
    /// The operand A fragment of rows A and B (a warp's 16 rows) of a head-major bf16 tensor for k-step <paramref name="step"/>
    /// (channels 16 step ..): zeros past the rows, the channels or the steps.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadOperand(ref MmaOperandA a, ArrayView<ushort> x, long itemBase, int rowA, int rowB, int n, int pairs, int step, int kSteps, int t)
    {
        if (step >= kSteps) return;
        int pair = 8 * step + t;
        a.A0 = Pair(x, itemBase, rowA, n, pairs, pair);
        a.A1 = Pair(x, itemBase, rowB, n, pairs, pair);
        a.A2 = Pair(x, itemBase, rowA, n, pairs, pair + 4);
        a.A3 = Pair(x, itemBase, rowB, n, pairs, pair + 4);
    }

    /// <summary>The operand A fragments of rows A and B of a head-major bf16 tensor for all k-steps (<see cref="LoadOperand"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static HeadFragments LoadOperands(ArrayView<ushort> x, long itemBase, int rowA, int rowB, int n, int pairs, int kSteps, int t)
    {
        var a = new HeadFragments();
        LoadOperand(ref a.K0, x, itemBase, rowA, rowB, n, pairs, 0, kSteps, t);
        LoadOperand(ref a.K1, x, itemBase, rowA, rowB, n, pairs, 1, kSteps, t);
        LoadOperand(ref a.K2, x, itemBase, rowA, rowB, n, pairs, 2, kSteps, t);
        LoadOperand(ref a.K3, x, itemBase, rowA, rowB, n, pairs, 3, kSteps, t);
        LoadOperand(ref a.K4, x, itemBase, rowA, rowB, n, pairs, 4, kSteps, t);
        return a;
    }

    /// <summary>Channels 2 pair and 2 pair + 1 of head-major row <paramref name="row"/> in one register; 0 past the rows or channels.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Pair(ArrayView<ushort> x, long itemBase, int row, int n, int pairs, int pair)
    {
        if (row >= n || pair >= pairs) return 0u;
        long at = itemBase + (long)row * (2 * pairs) + 2 * pair;
        return x[at] | ((uint)x[at + 1] << 16);
    }

    /// <summary>
    /// Where register j of a staged row goes: within each run of 8 (one k-step of B: lane t reads j = t and t + 4), j and
    /// j + 4 side by side, so a lane's two registers are one 64-bit load (at 2 t of the run).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Paired(int j) => (j & ~7) | ((j & 3) << 1) | ((j >> 2) & 1);

    /// <summary>
    /// Rows row0 .. row0 + <paramref name="rows"/> - 1 of a head-major bf16 tensor into shared memory, a row of
    /// <paramref name="stagedPairs"/> channel pairs (a multiple of 8) every <paramref name="stride"/> registers, in
    /// <see cref="Paired"/> order (zero past the rows or channels): the operand B of a product with that tensor
    /// transposed (Q K^T reads K so, its columns the rows).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StageRows(ArrayView<uint> block, ArrayView<ushort> x, long itemBase, int row0, int rows, int stride, int n, int pairs,
        int stagedPairs, int thread, bool wide)
    {
        if (wide)
        {
            // 4 channels (two registers) a load. The block's rows are contiguous, so element f of the head's quads
            // (rows x pairs / 2 of them) is quad f past the block's first: consecutive threads read consecutive 8
            // bytes and only the shared position needs f's row (a division by a constant). The quads past the head
            // (the last k-step's zero half) are zeroed once (ZeroPadding). Constants where wide (IFlashHead).
            var x8 = x.Cast<ulong>();
            int headQuads = pairs / 2, present = Math.Min(rows, n - row0) * headQuads;
            long first = (itemBase + (long)row0 * 2 * pairs) / 4;
            for (int f = thread; f < rows * headQuads; f += Warps * 32)
            {
                int row = (int)((uint)f / (uint)headQuads), quad = f - row * headQuads;
                ulong value = f < present ? x8[first + f] : 0UL;
                var at = block.SubView(row * stride + Paired(2 * quad), 3); // Paired(2 q + 1) is Paired(2 q) + 2
                at[0] = (uint)value;
                at[2] = (uint)(value >> 32);
            }
            return;
        }
        // A warp a row at a time, its lanes along the row (no division by the run-time width).
        for (int row = thread >> 5; row < rows; row += Warps)
            for (int pair = thread & 31; pair < stagedPairs; pair += 32)
                block[row * stride + Paired(pair)] = Pair(x, itemBase, row0 + row, n, pairs, pair);
    }

    /// <summary>
    /// Zeros the staged registers past the head in a block's <paramref name="rows"/> rows (pairs .. stagedPairs - 1, the
    /// last k-step's zero half), which <see cref="StageRows"/> leaves alone when wide: once, before the first block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ZeroPadding(ArrayView<uint> block, int rows, int stride, int pairs, int stagedPairs, int thread)
    {
        int padding = stagedPairs - pairs;
        for (int i = thread; i < rows * padding; i += Warps * 32)
        {
            int row = i / padding;
            block[row * stride + Paired(pairs + i - row * padding)] = 0u;
        }
    }

    /// <summary>
    /// Rows row0 .. row0 + <paramref name="rows"/> (a multiple of 16) - 1 transposed into shared memory: channel c's row
    /// holds rows (2 j, 2 j + 1) in register <see cref="Paired"/>(j), every <paramref name="stride"/> registers (zero past
    /// the rows or channels): the operand B of a product with that tensor as it is (P V reads V so, its rows the keys).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StageColumns(ArrayView<uint> block, ArrayView<ushort> x, long itemBase, int row0, int rows, int stride, int n, int hd,
        int stagedChannels, int thread, bool wide)
    {
        if (wide)
        {
            // 4 channels of two rows a pair of loads (rows 2 p and 2 p + 1 are quads 2 p q and (2 p + 1) q past the
            // block's first, q = hd / 4), written as those 4 channels' registers of row pair p; hd is a multiple of 8,
            // so the staged channels are the head's.
            var x8 = x.Cast<ulong>();
            int quads = hd / 4, present = n - row0;
            long first = (itemBase + (long)row0 * hd) / 4;
            for (int f = thread; f < rows / 2 * quads; f += Warps * 32)
            {
                int rowPair = (int)((uint)f / (uint)quads), quad = f - rowPair * quads;
                long at = first + f + rowPair * quads;
                ulong low = 2 * rowPair < present ? x8[at] : 0UL, high = 2 * rowPair + 1 < present ? x8[at + quads] : 0UL;
                var column = block.SubView(4 * quad * stride + Paired(rowPair), 3 * stride + 1); // the 4 channels' rows at fixed offsets
                column[0] = Interleave(low, high, 0);
                column[stride] = Interleave(low, high, 16);
                column[2 * stride] = Interleave(low, high, 32);
                column[3 * stride] = Interleave(low, high, 48);
            }
            return;
        }
        // A warp a pair of rows at a time, its lanes along the channels (neighbouring lanes read neighbouring channels;
        // no division by the run-time width).
        for (int rowPair = thread >> 5; rowPair < rows / 2; rowPair += Warps)
        {
            int row = row0 + 2 * rowPair;
            for (int channel = thread & 31; channel < stagedChannels; channel += 32)
            {
                uint low = 0u, high = 0u;
                if (channel < hd)
                {
                    if (row < n) low = x[itemBase + (long)row * hd + channel];
                    if (row + 1 < n) high = x[itemBase + (long)(row + 1) * hd + channel];
                }
                block[channel * stride + Paired(rowPair)] = low | (high << 16);
            }
        }
    }

    /// <summary>The bf16 at bit <paramref name="shift"/> of <paramref name="low"/> (lower half) and of <paramref name="high"/> (upper half) in one register.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Interleave(ulong low, ulong high, int shift) => (uint)((low >> shift) & 0xFFFF) | ((uint)((high >> shift) & 0xFFFF) << 16);

    /// <summary>
    /// Tile <paramref name="tile"/> of a warp's block of logits: its rows' operand fragments <paramref name="a"/> times the
    /// staged rows 8 tile .. 8 tile + 7 (B's column g is staged row 8 tile + g, its rows channels 16 step + 2 t (+ 1) and + 8).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Products(ref MmaAccumulator acc, HeadFragments a, ArrayView<ulong> rows, int tile, int kSteps, int g, int t)
    {
        // One address for the tile, the k-steps at fixed offsets from it (the loads' immediates); (b0, b1) of k-step s at 4 s.
        var b = rows.SubView((8 * tile + g) * (RowStride / 2) + t, MaxHeadDim / 4 - 3);
        acc = default;
        ProductStep(ref acc, a.K0, b, 0, kSteps);
        ProductStep(ref acc, a.K1, b, 1, kSteps);
        ProductStep(ref acc, a.K2, b, 2, kSteps);
        ProductStep(ref acc, a.K3, b, 3, kSteps);
        ProductStep(ref acc, a.K4, b, 4, kSteps);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ProductStep(ref MmaAccumulator acc, MmaOperandA a, ArrayView<ulong> row, int step, int kSteps)
    {
        if (step < kSteps) Bf16(ref acc, a, row[4 * step]);
    }

    /// <summary><see cref="WarpMma.Bf16"/> with B's two registers as staged side by side (<see cref="Paired"/>): b0 the lower half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Bf16(ref MmaAccumulator acc, MmaOperandA a, ulong b) => WarpMma.Bf16(ref acc, a, (uint)b, (uint)(b >> 32));

    /// <summary>The block's 8 tiles of logits from a warp's rows' fragments and the staged keys (<see cref="Products"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ScoreTiles KeyProducts(HeadFragments a, ArrayView<ulong> rows, int kSteps, int g, int t)
    {
        var s = new ScoreTiles();
        Products(ref s.T0, a, rows, 0, kSteps, g, t);
        Products(ref s.T1, a, rows, 1, kSteps, g, t);
        Products(ref s.T2, a, rows, 2, kSteps, g, t);
        Products(ref s.T3, a, rows, 3, kSteps, g, t);
        Products(ref s.T4, a, rows, 4, kSteps, g, t);
        Products(ref s.T5, a, rows, 5, kSteps, g, t);
        Products(ref s.T6, a, rows, 6, kSteps, g, t);
        Products(ref s.T7, a, rows, 7, kSteps, g, t);
        return s;
    }

    /// <summary>The block's logits with tile j's columns 2 t and 2 t + 1 at -inf where they are not below <paramref name="limit"/> - 8 j (past the keys).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Mask(ref ScoreTiles s, int limit)
    {
        Mask(ref s.T0, limit);
        Mask(ref s.T1, limit - 8);
        Mask(ref s.T2, limit - 16);
        Mask(ref s.T3, limit - 24);
        Mask(ref s.T4, limit - 32);
        Mask(ref s.T5, limit - 40);
        Mask(ref s.T6, limit - 48);
        Mask(ref s.T7, limit - 56);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Mask(ref MmaAccumulator s, int limit)
    {
        if (limit <= 0) { s.C0 = float.NegativeInfinity; s.C2 = float.NegativeInfinity; }
        if (limit <= 1) { s.C1 = float.NegativeInfinity; s.C3 = float.NegativeInfinity; }
    }

    /// <summary>The largest of a row's 16 values in this lane and the 3 other lanes of its group.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowMax(float a, float b, float c, float d, float e, float f, float g, float h,
        float i, float j, float k, float l, float m, float n, float o, float p)
    {
        float x = MathF.Max(MathF.Max(MathF.Max(a, b), MathF.Max(c, d)), MathF.Max(MathF.Max(e, f), MathF.Max(g, h)));
        float y = MathF.Max(MathF.Max(MathF.Max(i, j), MathF.Max(k, l)), MathF.Max(MathF.Max(m, n), MathF.Max(o, p)));
        float max = MathF.Max(x, y);
        max = MathF.Max(max, Warp.ShuffleXor(max, 1));
        return MathF.Max(max, Warp.ShuffleXor(max, 2));
    }

    /// <summary>
    /// 2^(s scale - the row's max) in place (base 2 of the logits scaled into log2 units), added to the lane's shares of
    /// the rows' sums (masked keys give 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Exponentials(ref ScoreTiles s, float scale, float maxA, float maxB, ref float sumA, ref float sumB)
    {
        Exponentials(ref s.T0, scale, maxA, maxB, ref sumA, ref sumB);
        Exponentials(ref s.T1, scale, maxA, maxB, ref sumA, ref sumB);
        Exponentials(ref s.T2, scale, maxA, maxB, ref sumA, ref sumB);
        Exponentials(ref s.T3, scale, maxA, maxB, ref sumA, ref sumB);
        Exponentials(ref s.T4, scale, maxA, maxB, ref sumA, ref sumB);
        Exponentials(ref s.T5, scale, maxA, maxB, ref sumA, ref sumB);
        Exponentials(ref s.T6, scale, maxA, maxB, ref sumA, ref sumB);
        Exponentials(ref s.T7, scale, maxA, maxB, ref sumA, ref sumB);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Exponentials(ref MmaAccumulator s, float scale, float maxA, float maxB, ref float sumA, ref float sumB)
    {
        s.C0 = Exp2(s.C0 * scale - maxA);
        s.C1 = Exp2(s.C1 * scale - maxA);
        s.C2 = Exp2(s.C2 * scale - maxB);
        s.C3 = Exp2(s.C3 * scale - maxB);
        sumA += s.C0 + s.C1;
        sumB += s.C2 + s.C3;
    }

    /// <summary>
    /// 2^x: on CUDA `ex2.approx.ftz.f32` (one special-function instruction; -inf gives 0); elsewhere
    /// <see cref="DeviceMath.Exp"/> of x ln 2.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Exp2(float x)
    {
        if (!CudaAsm.IsSupported) return DeviceMath.Exp(x * Ln2);
        Output<float> y = default;
        Input<float> input = x;
        CudaAsm.EmitRef("ex2.approx.ftz.f32 %0, %1;", ref y, ref input);
        return y.Value;
    }

    /// <summary>P's operand fragment for 16 keys from the two accumulator tiles of S that hold them, rounded to bf16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static MmaOperandA Operand(MmaAccumulator low, MmaAccumulator high) => new()
    {
        A0 = WarpMma.Pack(low.C0, low.C1), A1 = WarpMma.Pack(low.C2, low.C3),
        A2 = WarpMma.Pack(high.C0, high.C1), A3 = WarpMma.Pack(high.C2, high.C3),
    };

    /// <summary>The output accumulator's tiles rescaled by the rows' corrections, then += P V over the block's 64 keys.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(ref ChannelTiles acc, ProbabilityFragments p, ArrayView<ulong> valueBlock, int channelTiles, float alphaA, float alphaB, int g, int t)
    {
        var step = new ValueStep(p, valueBlock, channelTiles, alphaA, alphaB, g, t);
        ForEachTile(ref acc, ref step);
    }

    /// <summary><see cref="Accumulate(ref MmaAccumulator, ProbabilityFragments, ArrayView{ulong}, int, int, float, float, int, int)"/> as a tile operation.</summary>
    private readonly struct ValueStep(ProbabilityFragments p, ArrayView<ulong> valueBlock, int channelTiles, float alphaA, float alphaB, int g, int t) : ITileOperation
    {
        public void Apply(ref MmaAccumulator tile, int index) => Accumulate(ref tile, p, valueBlock, index, channelTiles, alphaA, alphaB, g, t);
    }

    /// <summary>An operation on tile <c>index</c> of a <see cref="ChannelTiles"/> (channels 8 index ..).</summary>
    private interface ITileOperation
    {
        void Apply(ref MmaAccumulator tile, int index);
    }

    /// <summary>
    /// <paramref name="operation"/> on each of the accumulator's 10 tiles, written out field by field (ILGPU does not
    /// unroll loops, and the tiles must stay registers): the one place the tiles are listed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ForEachTile<TOperation>(ref ChannelTiles x, ref TOperation operation) where TOperation : struct, ITileOperation
    {
        operation.Apply(ref x.T0, 0);
        operation.Apply(ref x.T1, 1);
        operation.Apply(ref x.T2, 2);
        operation.Apply(ref x.T3, 3);
        operation.Apply(ref x.T4, 4);
        operation.Apply(ref x.T5, 5);
        operation.Apply(ref x.T6, 6);
        operation.Apply(ref x.T7, 7);
        operation.Apply(ref x.T8, 8);
        operation.Apply(ref x.T9, 9);
    }

    /// <summary>Output tile <paramref name="tile"/> (channels 8 tile ..) rescaled by the rows' corrections, then += P V over the block's 64 keys.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(ref MmaAccumulator acc, ProbabilityFragments p, ArrayView<ulong> valueBlock, int tile, int channelTiles,
        float alphaA, float alphaB, int g, int t)
    {
        if (tile >= channelTiles) return;
        acc.C0 *= alphaA;
        acc.C1 *= alphaA;
        acc.C2 *= alphaB;
        acc.C3 *= alphaB;
        // B's column g is channel 8 tile + g, its rows keys 16 step + 2 t (+ 1) and + 8: (b0, b1) of key step s at 4 s.
        var b = valueBlock.SubView((8 * tile + g) * (ValueStride / 2) + t, 13);
        Bf16(ref acc, p.K0, b[0]);
        Bf16(ref acc, p.K1, b[4]);
        Bf16(ref acc, p.K2, b[8]);
        Bf16(ref acc, p.K3, b[12]);
    }

    /// <summary>A warp's 16 rows of an accumulator, row A times invA and row B times invB, into their head-major rows, where they exist.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ChannelTiles x, ArrayView<float> target, long itemBase, int rowA, int rowB, int n, int hd, float invA, float invB, int t)
    {
        var step = new StoreStep(target, itemBase, rowA, rowB, n, hd, invA, invB, t);
        ForEachTile(ref x, ref step);
    }

    /// <summary><see cref="Store(MmaAccumulator, ArrayView{float}, long, int, int, int, int, int, float, float, int)"/> as a tile operation.</summary>
    private readonly struct StoreStep(ArrayView<float> target, long itemBase, int rowA, int rowB, int n, int hd, float invA, float invB, int t) : ITileOperation
    {
        public void Apply(ref MmaAccumulator tile, int index) => Store(tile, target, itemBase, rowA, rowB, n, hd, index, invA, invB, t);
    }

    /// <summary>Output tile <paramref name="tile"/> times invA (row A) and invB (row B) into o's rows A and B, channels 8 tile + 2 t (+ 1), where they exist.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(MmaAccumulator acc, ArrayView<float> o, long itemBase, int rowA, int rowB, int n, int hd, int tile, float invA, float invB, int t)
    {
        int channel = 8 * tile + 2 * t;
        if (channel >= hd) return; // hd is even: a lane's two channels are both in or both out
        if (rowA < n)
        {
            o[itemBase + (long)rowA * hd + channel] = acc.C0 * invA;
            o[itemBase + (long)rowA * hd + channel + 1] = acc.C1 * invA;
        }
        if (rowB < n)
        {
            o[itemBase + (long)rowB * hd + channel] = acc.C2 * invB;
            o[itemBase + (long)rowB * hd + channel + 1] = acc.C3 * invB;
        }
    }

    /// <summary>A warp's operand fragments of its 16 rows of q, k, v or dO: up to 5 k-steps of 16 channels.</summary>
    private struct HeadFragments
    {
        public MmaOperandA K0, K1, K2, K3, K4;
    }

    /// <summary>P's operand fragments for the block's 4 steps of 16 keys.</summary>
    private struct ProbabilityFragments
    {
        public MmaOperandA K0, K1, K2, K3;
    }

    /// <summary>The 16 x 64 logits of a warp's rows and the block's keys: 8 tiles of 8 keys.</summary>
    private struct ScoreTiles
    {
        public MmaAccumulator T0, T1, T2, T3, T4, T5, T6, T7;
    }

    /// <summary>A warp's 16 x hd accumulator (output or gradient): up to 10 tiles of 8 channels.</summary>
    private struct ChannelTiles
    {
        public MmaAccumulator T0, T1, T2, T3, T4, T5, T6, T7, T8, T9;
    }
}
