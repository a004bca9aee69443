using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Models;

/// <summary>
/// Full attention's core, forward and backward, as strided-batched matrix products, so that on a GPU it runs on the
/// tensor cores (bf16) or cuBLAS's SGEMM (fp32) rather than in one thread per row (<see cref="KernelSet.FlashAttention"/>
/// and <see cref="KernelSet.FullAttentionBackward"/>, kept as the reference the tests hold this to).
/// q, k and v (and dO) are first moved from the blocks' rows (B*N, 3D) into head-major copies (B, H, N, hd), so one
/// product with a fixed batch stride covers all B H (image, head) items. The logits are then made a tile at a time:
/// a tile is (items, rows, N) for a run of items and query rows, at most <see cref="TileFloats"/> floats, so the
/// N x N matrix of every item is never stored at once (for SiT-XL/2 at batch 64, 1,024 items of 256 x 256, a tile is 512
/// items). Per tile, forward: S = s Q K^T, softmax (lse saved, as the reference's), O = P V. Backward, with delta =
/// rowsum(dO O): S and dP = dO V^T, P = exp(S - lse) and dS = P (dP - delta), then dQ = s dS K, dK += s dS^T Q,
/// dV += P^T dO (the query tiles of an item add into its dK and dV). In bf16 the products' operands (q, k, v, dO,
/// P, dS) are rounded to bf16 and accumulated in fp32; the softmax and its backward run in fp32. A bf16 training step
/// at the sizes where P is small next to a block's other kept tensors (<see cref="KeepsProbabilities"/>: every model at
/// 256 tokens) keeps the forward's P in bf16 (B, H, N, N; 2 bytes a logit, where the tiles above are scratch): its
/// backward then neither makes S again nor reads it, and dS = P (dP - delta) takes that P, the one dV's product reads too.
/// Sums run in the products' order, not the reference's: the two agree to rounding.
/// One instance serves the device models that share a <see cref="LinearProducts"/> (the members of a ladder run one
/// after another); its scratch grows to the largest batch it met.
/// </summary>
internal sealed class AttentionProducts : IDisposable
{
    /// <summary>The default tile: 2^25 floats (128 MiB; two of them, plus their bf16 copies, in a backward).</summary>
    public const long DefaultTileFloats = 1L << 25;

    private readonly KernelSet _kernels;
    private readonly IDeviceGemm _gemm;
    private readonly bool _bf16, _fused;
    // Head-major q, k, v, then O (forward) or dO (backward), then dq, dk, dv (backward): up to 7 (B*N*D) floats; their
    // bf16 copies (q, k, v, dO) in bf16; the tile's S and dP, and their bf16 copies.
    private MemoryBuffer1D<float, Stride1D.Dense>? _heads, _tiles;
    private MemoryBuffer1D<ushort, Stride1D.Dense>? _heads16, _tiles16;

    /// <summary>
    /// Products by <paramref name="gemm"/> (the caller's) at <paramref name="precision"/>, tiles of at most
    /// <paramref name="tileFloats"/> logits. In bf16 with <paramref name="operandsFromProducers"/> the head-major copies,
    /// the softmax and its backward write the bf16 operands directly (no fp32 copy of head-major q, k, v, dO, and of P
    /// and dS, is rounded in a pass of its own); false: the same bits through fp32 and separate roundings, the reference.
    /// </summary>
    public AttentionProducts(KernelSet kernels, IDeviceGemm gemm, DevicePrecision precision, long tileFloats = DefaultTileFloats,
        bool operandsFromProducers = true)
    {
        if (tileFloats < 1) throw new ArgumentOutOfRangeException(nameof(tileFloats), "a tile holds at least one logit.");
        _kernels = kernels;
        _gemm = gemm;
        _bf16 = precision == DevicePrecision.Bf16;
        _fused = _bf16 && operandsFromProducers;
        _tileFloats = tileFloats;
    }

    private long _tileFloats;

    /// <summary>
    /// Whether a bf16 forward that keeps no P runs its core as one fused kernel on the tensor cores
    /// (<see cref="KernelSet.FlashForward"/>: the logits in registers, 64 keys at a time) instead of tiles of products,
    /// where that kernel runs (32-lane warps; on CUDA compute capability 8.0 or later) and the head is even and at most
    /// 80 wide (SiT's and DiT's 64 and 72); elsewhere the tiles run. Off by default until a card has timed it against
    /// the tiles (the device check's 4,096-token forward does); it may be changed between calls. The results agree with
    /// the tiles' to bf16 rounding: the fused kernel rounds P before dividing by the row's sum, the tiles after.
    /// </summary>
    public bool FusedForward { get; set; }

    /// <summary>
    /// Whether a bf16 backward that has no kept P runs its core as two fused kernels on the tensor cores
    /// (<see cref="KernelSet.FlashBackward"/>: dK and dV per key block, dQ per query block, S and P made again in
    /// registers) instead of tiles of products, where they run (as <see cref="FusedForward"/>; heads even and at most 80
    /// wide). With it a training step keeps no P (<see cref="KeepsProbabilitiesFor"/>). Off by default until a card has
    /// timed it; set it before the first training step, which allocates what the step keeps.
    /// </summary>
    public bool FusedBackward { get; set; }

    /// <summary>Whether a bf16 training step of <paramref name="cfg"/> keeps P: <see cref="KeepsProbabilities"/>, unless the fused backward makes S again.</summary>
    public bool KeepsProbabilitiesFor(ModelConfig cfg) => KeepsProbabilities(cfg) && !FusesBackward(cfg.HeadDim);

    /// <summary>Whether a forward of <paramref name="cfg"/> (full attention) that keeps no P runs the fused kernel.</summary>
    public bool Fuses(ModelConfig cfg) => cfg.Attention != AttentionKind.Mediator && Fuses(cfg.HeadDim);

    /// <summary>Whether a backward of <paramref name="cfg"/> (full attention) that has no kept P runs the fused kernels.</summary>
    public bool FusesBackward(ModelConfig cfg) => cfg.Attention != AttentionKind.Mediator && FusesBackward(cfg.HeadDim);

    private bool Fuses(int headDim) => FusedForward && FlashKernelsTake(headDim);

    private bool FusesBackward(int headDim) => FusedBackward && FlashKernelsTake(headDim);

    /// <summary>Whether the fused kernels can serve these products at heads of <paramref name="headDim"/>: bf16, where they run, a head they take.</summary>
    private bool FlashKernelsTake(int headDim) => _bf16 && _kernels.FlashKernelsRun && FlashMmaKernels.TakesHead(headDim);

    /// <summary>
    /// Whether a bf16 training step of <paramref name="cfg"/> (full attention) keeps each block's P (B, H, N, N) for the
    /// backward: only where a token's row of P (H N bf16 values) is no wider than its row of fc1's bf16 output (4D),
    /// the widest tensor a block keeps anyway, so keeping P at most doubles that one. It holds for every SiT/DiT
    /// size at 256 tokens (SiT-XL/2: 16 x 256 = 4,096 against 4,608), where it saves the backward's S product and
    /// 8 bytes of traffic per logit; past it (SiT-XL/2 at 1,024 tokens: 16,384) P grows with N^2 while the rest of a
    /// block grows with N, and the backward makes S again a tile at a time, flash-style, never storing all of it.
    /// </summary>
    public static bool KeepsProbabilities(ModelConfig cfg) =>
        cfg.Attention != AttentionKind.Mediator && (long)cfg.NumHeads * cfg.NumTokens <= 4L * cfg.HiddenSize;

    /// <summary>
    /// The most logits one tile holds; it may be changed between calls (the results agree to rounding: sums run per
    /// tile), e.g. to time tiles that stay in a GPU's L2 cache against larger ones with fewer launches.
    /// </summary>
    public long TileFloats
    {
        get => _tileFloats;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1L, nameof(TileFloats));
            _tileFloats = value;
        }
    }

    /// <summary>
    /// o (B*N, D) = softmax(s q k^T) v per image and head from qkv (B*N, 3D) plus <paramref name="qkvBias"/> (3D; empty:
    /// qkv holds the biased values), the bias added as q, k and v are moved to head-major (so the qkv product need not
    /// write bias rows first); lse (B, H, N) gets each row's log-sum-exp (natural log of the sum of exp of the scaled
    /// logits), what <see cref="FullBackward"/> reads. With <paramref name="qkvHeads16"/> (3 B N D; bf16 operands from
    /// their producers only) the head-major bf16 q, k and v are written there, for the backward to read again; with
    /// <paramref name="o16"/> (as long as o; likewise) o's bf16 values, proj's operand, as o is moved back to rows. With
    /// <paramref name="probabilities16"/> (B, H, N, N; bf16 only) P's bf16 values are written there, where the PV
    /// product reads them, for the backward to read again. A sampling forward passes <paramref name="forBackward"/>
    /// false: with <paramref name="o16"/> o's fp32 rows, which only the backward reads, are then not written.
    /// </summary>
    public void FullForward(ArrayView<float> qkv, ArrayView<float> qkvBias, ArrayView<float> o, ArrayView<float> lse, AttentionGeometry g,
        ArrayView<ushort> qkvHeads16 = default, ArrayView<ushort> o16 = default, ArrayView<ushort> probabilities16 = default, bool forBackward = true)
    {
        int n = g.Tokens, hd = g.HeadDim, items = g.Batch * g.Heads;
        long e = (long)g.Batch * n * g.Dim;
        Check(qkv.Length >= 3 * e && o.Length >= e && lse.Length >= (long)items * n, "qkv, o or lse is too short for the geometry");
        CheckQkvBias(qkvBias, g);
        CheckKeptHeads(qkvHeads16, e);
        CheckOutputCopy(o16, e);
        bool keptP = CheckKeptProbabilities(probabilities16, g);
        var (heads, heads16) = Heads(4 * e, 3 * e);
        var (q, k, v) = SplitHeads(qkv, qkvBias, heads, qkvHeads16.Length > 0 ? qkvHeads16 : heads16, g);
        var oh = heads.SubView(3 * e, e);
        if (Fuses(g.HeadDim) && !keptP)
        {
            using (_kernels.SubStage("fused kernel", 4.0 * items * n * n * hd)) // S and P V: 2 N^2 hd multiply-adds an item
                _kernels.FlashForward(q.B16, k.B16, v.B16, oh, lse, items, n, hd, g.Scale);
        }
        else ForwardTiles(q, k, v, oh, lse, g, keptP ? probabilities16 : default);
        using (_kernels.SubStage("layout"))
        {
            var layout = new HeadLayout(n, g.Heads, hd, g.Dim, 0);
            if (o16.Length > 0) _kernels.FromHeadMajorWithBf16(oh, o, o16, g.Batch, layout, floats: forBackward);
            else _kernels.FromHeadMajor(oh, o, g.Batch, layout);
        }
    }

    /// <summary>
    /// <see cref="FullForward"/>'s core over tiles of products: head-major q, k, v to head-major O (B H, N, hd) and lse,
    /// P written into <paramref name="probabilities16"/> when given.
    /// </summary>
    private void ForwardTiles(ProductOperand q, ProductOperand k, ProductOperand v, ArrayView<float> oh, ArrayView<float> lse, AttentionGeometry g,
        ArrayView<ushort> probabilities16)
    {
        int n = g.Tokens, hd = g.HeadDim, items = g.Batch * g.Heads;
        bool keptP = probabilities16.Length > 0;
        var (tile, tile16) = Tiles(items, n, 1);
        foreach (var (i0, ni, r0, rows) in Tiling(items, n))
        {
            long item = (long)i0 * n * hd, row = (long)r0 * hd;
            var s = new ProductOperand(tile, keptP ? KeptTile(probabilities16, i0, ni, r0, rows, n) : tile16);
            // S (ni, rows, N) = s Q_tile K^T.
            Product(new GemmShape(false, true, rows, n, hd, g.Scale, hd, hd, 0f, n, (long)n * hd, (long)n * hd, (long)rows * n, ni),
                q.From(item + row), k.From(item), s.F32);
            using (_kernels.SubStage("softmax"))
            {
                if (_fused) _kernels.TileSoftmaxBf16(tile, s.B16, lse, ni, new AttentionTile(n, rows, i0, r0));
                else
                {
                    _kernels.TileSoftmax(tile, lse, ni, new AttentionTile(n, rows, i0, r0));
                    Round(s, (long)ni * rows * n);
                }
            }
            // O_tile (ni, rows, hd) = P V.
            Product(new GemmShape(false, false, rows, hd, n, 1f, n, hd, 0f, hd, (long)rows * n, (long)n * hd, (long)n * hd, ni),
                s, v.From(item), oh.SubView(item + row));
        }
    }

    /// <summary>
    /// dqkv (B*N, 3D) overwritten with the gradient of <see cref="FullForward"/> from qkv and qkvBias (as there), its
    /// output o and lse, and dO (B*N, D); delta (B, H, N) is scratch. With <paramref name="dqkv16"/> (bf16 operands from
    /// their producers) the moves back to rows also write dqkv's bf16 copy there, the operand of qkv's backward products.
    /// With <paramref name="qkvHeads16"/>, what the forward wrote there, the products read q, k and v from it and
    /// qkv and qkvBias are not read. With <paramref name="probabilities16"/>, the P the forward kept there, S is not
    /// made again and lse is not read.
    /// </summary>
    public void FullBackward(ArrayView<float> qkv, ArrayView<float> qkvBias, ArrayView<float> o, ArrayView<float> dO, ArrayView<float> lse,
        ArrayView<float> delta, ArrayView<float> dqkv, AttentionGeometry g, ArrayView<ushort> dqkv16 = default, ArrayView<ushort> qkvHeads16 = default,
        ArrayView<ushort> probabilities16 = default)
    {
        int n = g.Tokens, hd = g.HeadDim, items = g.Batch * g.Heads;
        long e = (long)g.Batch * n * g.Dim;
        Check(qkv.Length >= 3 * e && dqkv.Length >= 3 * e && o.Length >= e && dO.Length >= e, "qkv, dqkv, o or dO is too short for the geometry");
        Check(lse.Length >= (long)items * n && delta.Length >= (long)items * n, "lse and delta need (B, H, N)");
        CheckQkvBias(qkvBias, g);
        CheckKeptHeads(qkvHeads16, e);
        bool keptP = CheckKeptProbabilities(probabilities16, g);
        var (heads, heads16) = Heads(7 * e, 4 * e);
        var (q, k, v) = qkvHeads16.Length > 0
            ? (Part(heads, qkvHeads16, 0, e), Part(heads, qkvHeads16, 1, e), Part(heads, qkvHeads16, 2, e))
            : SplitHeads(qkv, qkvBias, heads, heads16, g);
        var dOh = Part(heads, heads16, 3, e);
        ArrayView<float> dq = heads.SubView(4 * e, e), dk = heads.SubView(5 * e, e), dv = heads.SubView(6 * e, e);
        using (_kernels.SubStage("layout"))
        {
            _kernels.FullAttentionDelta(o, dO, delta, g.Batch, n, g.Heads, hd);
            ToHeadMajor(dO, dOh, g.Batch, new HeadLayout(n, g.Heads, hd, g.Dim, 0), round: true);
        }
        if (FusesBackward(g.HeadDim) && !keptP)
        {
            using (_kernels.SubStage("fused kernels", 14.0 * items * n * n * hd)) // S and dP twice, dV, dK, dQ: 7 N^2 hd multiply-adds an item
                _kernels.FlashBackward(q.B16, k.B16, v.B16, dOh.B16, lse, delta, dq, dk, dv, items, n, hd, g.Scale);
        }
        else BackwardTiles(q, k, v, dOh, lse, delta, dq, dk, dv, g, probabilities16);
        using (_kernels.SubStage("layout"))
            for (int part = 0; part < 3; part++)
            {
                var layout = new HeadLayout(n, g.Heads, hd, 3 * g.Dim, part * g.Dim);
                if (_fused && dqkv16.Length > 0) _kernels.FromHeadMajorWithBf16(heads.SubView((4 + part) * e, e), dqkv, dqkv16, g.Batch, layout);
                else _kernels.FromHeadMajor(heads.SubView((4 + part) * e, e), dqkv, g.Batch, layout);
            }
    }

    /// <summary>
    /// <see cref="FullBackward"/>'s core over tiles of products: head-major dq, dk, dv (B H, N, hd) from head-major q, k,
    /// v, dO, lse and delta, or from the kept P (<paramref name="probabilities16"/>) instead of lse.
    /// </summary>
    private void BackwardTiles(ProductOperand q, ProductOperand k, ProductOperand v, ProductOperand dOh, ArrayView<float> lse, ArrayView<float> delta,
        ArrayView<float> dq, ArrayView<float> dk, ArrayView<float> dv, AttentionGeometry g, ArrayView<ushort> probabilities16)
    {
        int n = g.Tokens, hd = g.HeadDim, items = g.Batch * g.Heads;
        bool keptP = probabilities16.Length > 0;
        // Two tiles, S (P) and dP (dS), or dP alone where P was kept.
        int count = keptP ? 1 : 2;
        var (tiles, tiles16) = Tiles(items, n, count);
        long tileLength = tiles.Length / count;
        ProductOperand Tile(int index) => new(tiles.SubView(index * tileLength, tileLength), _bf16 ? tiles16.SubView(index * tileLength, tileLength) : default);
        var dp = Tile(count - 1);
        var scratchS = keptP ? default : Tile(0);
        foreach (var (i0, ni, r0, rows) in Tiling(items, n))
        {
            long item = (long)i0 * n * hd, row = (long)r0 * hd, tileStride = (long)rows * n, itemStride = (long)n * hd;
            float accumulate = r0 == 0 ? 0f : 1f; // an item's first query tile overwrites its dK and dV, later ones add
            var tile = new AttentionTile(n, rows, i0, r0);
            // S = s Q_tile K^T (unless P was kept) and dP = dO_tile V^T (ni, rows, N).
            var s = keptP ? new ProductOperand(default, KeptTile(probabilities16, i0, ni, r0, rows, n)) : scratchS;
            if (!keptP)
                Product(new GemmShape(false, true, rows, n, hd, g.Scale, hd, hd, 0f, n, itemStride, itemStride, tileStride, ni), q.From(item + row), k.From(item), s.F32);
            Product(new GemmShape(false, true, rows, n, hd, 1f, hd, hd, 0f, n, itemStride, itemStride, tileStride, ni), dOh.From(item + row), v.From(item), dp.F32);
            using (_kernels.SubStage("softmax"))
            {
                if (keptP && _fused) _kernels.TileSoftmaxBackwardFromProbabilitiesBf16(s.B16, dp.F32, delta, dp.B16, ni, tile);
                else if (keptP)
                {
                    _kernels.TileSoftmaxBackwardFromProbabilities(s.B16, dp.F32, delta, ni, tile);
                    Round(dp, (long)ni * tileStride);
                }
                else if (_fused) _kernels.TileSoftmaxBackwardBf16(s.F32, dp.F32, lse, delta, s.B16, dp.B16, ni, tile);
                else
                {
                    _kernels.TileSoftmaxBackward(s.F32, dp.F32, lse, delta, ni, tile);
                    Round(s, (long)ni * tileStride);
                    Round(dp, (long)ni * tileStride);
                }
            }
            // dQ_tile = s dS K; dK += s dS^T Q_tile; dV += P^T dO_tile.
            Product(new GemmShape(false, false, rows, hd, n, g.Scale, n, hd, 0f, hd, tileStride, itemStride, itemStride, ni), dp, k.From(item), dq.SubView(item + row));
            Product(new GemmShape(true, false, n, hd, rows, g.Scale, n, hd, accumulate, hd, tileStride, itemStride, itemStride, ni), dp, q.From(item + row), dk.SubView(item));
            Product(new GemmShape(true, false, n, hd, rows, 1f, n, hd, accumulate, hd, tileStride, itemStride, itemStride, ni), s, dOh.From(item + row), dv.SubView(item));
        }
    }

    /// <summary>
    /// Mediator attention's core as products, the same tensors as <see cref="KernelSet.MediatorAttention"/> (its
    /// reference): T (B, n, D) = the pooled q; per (image, head) item A1 (n, N) = softmax(s T k^T + bias1),
    /// Vm (n, hd) = A1 v, A2 (N, n) = softmax(s q T^T + bias2), o = A2 Vm + dwc(v), with bias1 (H, n, N), bias2 (H, N, n),
    /// the depthwise conv's weight (D, 1, 3, 3) and bias (D). T, A1, Vm and A2 are kept in their layouts (B, n, D),
    /// (B, H, n, N), (B, H, n, hd), (B, H, N, n), which the backward reads; q, k, v and T are read from head-major copies,
    /// so each of the four products is one strided-batched call over all B H items. In bf16 the products read bf16
    /// copies of q, k, v, T, A1, Vm and A2. q, k and v are qkv's plus <paramref name="qkvBias"/> (3D; empty: qkv holds
    /// them whole), added by every kernel that reads them (the head-major moves, the pooling, the depthwise conv). The
    /// depthwise conv reads the last product's head-major output and writes o's rows (one pass for the move and the add),
    /// and with <paramref name="o16"/> (as long as o; bf16 operands from their producers only) o's bf16 values, proj's operand.
    /// With bf16 operands from their producers the two softmaxes write A1's and A2's bf16 copies themselves, and their
    /// fp32 values only for a training forward (<paramref name="forBackward"/>: the backward reads them, and o's fp32
    /// rows); a sampling forward passes false, a1 and a2 are left holding the logits and, with o16, o is not written.
    /// </summary>
    public void MediatorForward(ArrayView<float> qkv, ArrayView<float> qkvBias, ArrayView<float> bias1, ArrayView<float> bias2, ArrayView<float> dwcWeight,
        ArrayView<float> dwcBias, ArrayView<float> tokens, ArrayView<float> a1, ArrayView<float> vm, ArrayView<float> a2, ArrayView<float> o,
        AttentionGeometry g, ArrayView<ushort> o16 = default, bool forBackward = true)
    {
        int n = g.Tokens, hd = g.HeadDim, m = g.Mediators, items = g.Batch * g.Heads;
        long e = (long)g.Batch * n * g.Dim, te = (long)g.Batch * m * g.Dim, maps = (long)items * m * n;
        Check(qkv.Length >= 3 * e && o.Length >= e && tokens.Length >= te, "qkv, o or tokens is too short for the geometry");
        Check(a1.Length >= maps && a2.Length >= maps && vm.Length >= te, "a1, a2 or vm is too short for the geometry");
        CheckOutputCopy(o16, e);
        // Head-major q, k, v, O and T; in bf16 their copies (but O's), then A1's, A2's and Vm's.
        var (heads, heads16) = Heads(4 * e + te, 3 * e + te + 2 * maps + te);
        CheckQkvBias(qkvBias, g);
        var (q, k, v) = SplitHeads(qkv, qkvBias, heads, heads16, g);
        var oh = heads.SubView(3 * e, e);
        var th = new ProductOperand(heads.SubView(4 * e, te), _bf16 ? heads16.SubView(3 * e, te) : default); // O has no bf16 copy
        var a1Op = new ProductOperand(a1, _bf16 ? heads16.SubView(3 * e + te, maps) : default);
        var a2Op = new ProductOperand(a2, _bf16 ? heads16.SubView(3 * e + te + maps, maps) : default);
        var vmOp = new ProductOperand(vm, _bf16 ? heads16.SubView(3 * e + te + 2 * maps, te) : default);
        using (_kernels.SubStage("pooling and layout"))
        {
            _kernels.MediatorPool(qkv, tokens, g, qkvBias);
            ToHeadMajor(tokens, th, g.Batch, new HeadLayout(m, g.Heads, hd, g.Dim, 0), round: true);
        }
        long itemQ = (long)n * hd, itemT = (long)m * hd, itemMap = (long)m * n;
        // A1 (items, n, N) = s T K^T, then its softmax with bias1.
        Product(new GemmShape(false, true, m, n, hd, g.Scale, hd, hd, 0f, n, itemT, itemQ, itemMap, items), th, k, a1);
        // A2 (items, N, n) = s Q T^T.
        Product(new GemmShape(false, true, n, m, hd, g.Scale, hd, hd, 0f, m, itemQ, itemT, itemMap, items), q, th, a2);
        using (_kernels.SubStage("softmax"))
        {
            if (_fused)
            {
                _kernels.SoftmaxRowsWithBiasTableBf16(a1, bias1, a1Op.B16, items * m, n, g.Heads * m, keepFloats: forBackward);
                _kernels.SoftmaxRowsWithBiasTableBf16(a2, bias2, a2Op.B16, items * n, m, g.Heads * n, keepFloats: forBackward);
            }
            else
            {
                _kernels.SoftmaxRowsWithBiasTable(a1, bias1, items * m, n, g.Heads * m);
                _kernels.SoftmaxRowsWithBiasTable(a2, bias2, items * n, m, g.Heads * n);
                Round(a1Op, maps);
                Round(a2Op, maps);
            }
        }
        // Vm (items, n, hd) = A1 V.
        Product(new GemmShape(false, false, m, hd, n, 1f, n, hd, 0f, hd, itemMap, itemQ, itemT, items), a1Op, v, vm);
        using (_kernels.SubStage("softmax")) Round(vmOp, te);
        // O (items, N, hd) = A2 Vm; o = O back in rows plus the depthwise conv of v.
        Product(new GemmShape(false, false, n, hd, m, 1f, m, hd, 0f, hd, itemMap, itemT, itemQ, items), a2Op, vmOp, oh);
        using (_kernels.SubStage("layout and depthwise conv")) _kernels.DepthwiseConvAddFromHeads(qkv, dwcWeight, dwcBias, oh, o, g, qkvBias, o16, floats: forBackward);
    }

    /// <summary>
    /// Mediator attention's core backward as products, what <see cref="KernelSet.MediatorCoreBackward"/> (its reference)
    /// computes from the same views: dqkv, dS1 (B, H, n, N), dS2 (B, H, N, n) and the depthwise conv's per-image
    /// gradients dTaps overwritten, dVm and dT (B, H, n, hd) as scratch. Per item: dA2 = dO Vm^T and dVm = A2^T dO,
    /// dS2 = A2 (dA2 - rowsum(A2 dA2)); dA1 = dVm v^T, dS1 likewise with A1; dT = s dS1 k + s dS2^T q; dq = s dS2 T + the
    /// pooling's transpose of dT, dk = s dS1^T T, dv = A1^T dVm + the depthwise conv's transpose of dO. Its products
    /// run in fp32 at both precisions (they are n-by-N, a small part of a step's FLOPs). q, k and v are v.Qkv's plus
    /// <paramref name="qkvBias"/> as in <see cref="MediatorForward"/>.
    /// </summary>
    public void MediatorBackward(in MediatorBackwardViews v, ArrayView<float> qkvBias, AttentionGeometry g)
    {
        int n = g.Tokens, hd = g.HeadDim, m = g.Mediators, items = g.Batch * g.Heads;
        long e = (long)g.Batch * n * g.Dim, te = (long)g.Batch * m * g.Dim, maps = (long)items * m * n;
        Check(v.Qkv.Length >= 3 * e && v.DQkv.Length >= 3 * e && v.DO.Length >= e && v.Tokens.Length >= te, "qkv, dqkv, dO or tokens is too short for the geometry");
        Check(v.A1.Length >= maps && v.A2.Length >= maps && v.DS1.Length >= maps && v.DS2.Length >= maps, "A1, A2, dS1 or dS2 is too short for the geometry");
        Check(v.Vm.Length >= te && v.DVm.Length >= te && v.DT.Length >= te, "Vm, dVm or dT is too short for the geometry");
        // Head-major q, k, v, dO, then dq, dk, dv, then T: fp32 only.
        var (heads, _) = Heads(7 * e + te, 0);
        CheckQkvBias(qkvBias, g);
        var (q, k, vh) = SplitHeads(v.Qkv, qkvBias, heads, default, g, round: false);
        ArrayView<float> dOh = heads.SubView(3 * e, e), th = heads.SubView(7 * e, te);
        var shape = new MediatorShape(g.Heads, hd, g.Grid, g.Grid, g.MedGrid, g.Scale);
        using (_kernels.SubStage("layout"))
        {
            _kernels.ToHeadMajor(v.DO, dOh, g.Batch, new HeadLayout(n, g.Heads, hd, g.Dim, 0));
            _kernels.ToHeadMajor(v.Tokens, th, g.Batch, new HeadLayout(m, g.Heads, hd, g.Dim, 0));
        }
        long itemQ = (long)n * hd, itemT = (long)m * hd, itemMap = (long)m * n;
        ArrayView<float> dS1 = v.DS1.SubView(0, maps), dS2 = v.DS2.SubView(0, maps);
        // dA2 (items, N, n) = dO Vm^T and dVm (items, n, hd) = A2^T dO, then dS2.
        ProductF32(new GemmShape(false, true, n, m, hd, 1f, hd, hd, 0f, m, itemQ, itemT, itemMap, items), dOh, v.Vm, dS2);
        ProductF32(new GemmShape(true, false, m, hd, n, 1f, m, hd, 0f, hd, itemMap, itemQ, itemT, items), v.A2, dOh, v.DVm);
        using (_kernels.SubStage("softmax backward")) _kernels.SoftmaxBackward(v.A2.SubView(0, maps), dS2, m);
        // dA1 (items, n, N) = dVm V^T, then dS1.
        ProductF32(new GemmShape(false, true, m, n, hd, 1f, hd, hd, 0f, n, itemT, itemQ, itemMap, items), v.DVm, vh.F32, dS1);
        using (_kernels.SubStage("softmax backward")) _kernels.SoftmaxBackward(v.A1.SubView(0, maps), dS1, n);
        // dT (items, n, hd) = s dS1 K + s dS2^T Q.
        ProductF32(new GemmShape(false, false, m, hd, n, g.Scale, n, hd, 0f, hd, itemMap, itemQ, itemT, items), dS1, k.F32, v.DT);
        ProductF32(new GemmShape(true, false, m, hd, n, g.Scale, m, hd, 1f, hd, itemMap, itemQ, itemT, items), dS2, q.F32, v.DT);
        // dQ = s dS2 T, dK = s dS1^T T, dV = A1^T dVm (items, N, hd).
        ArrayView<float> dq = heads.SubView(4 * e, e), dk = heads.SubView(5 * e, e), dv = heads.SubView(6 * e, e);
        ProductF32(new GemmShape(false, false, n, hd, m, g.Scale, m, hd, 0f, hd, itemMap, itemT, itemQ, items), dS2, th, dq);
        ProductF32(new GemmShape(true, false, n, hd, m, g.Scale, n, hd, 0f, hd, itemMap, itemT, itemQ, items), dS1, th, dk);
        ProductF32(new GemmShape(true, false, n, hd, m, 1f, n, hd, 0f, hd, itemMap, itemT, itemQ, items), v.A1, v.DVm, dv);
        using (_kernels.SubStage("layout, pooling and depthwise conv"))
        {
            for (int part = 0; part < 3; part++)
                _kernels.FromHeadMajor(heads.SubView((4 + part) * e, e), v.DQkv, g.Batch, new HeadLayout(n, g.Heads, hd, 3 * g.Dim, part * g.Dim));
            _kernels.MediatorPoolingAndDepthwiseGradients(v.DT, v.DO, v.Taps, v.DQkv, g.Batch, shape);
            _kernels.DepthwiseGradientsPerImage(v.Qkv, v.DO, v.DTaps, g.Batch, shape, qkvBias);
        }
    }

    /// <summary>
    /// q, k and v of qkv (B*N, 3D) plus qkvBias (3D, or empty) into the first three (B*N*D) parts of the head-major
    /// scratch, and in bf16 (when <paramref name="round"/>) their copies; when the copies come from the moves themselves
    /// the fp32 parts are not written.
    /// </summary>
    private (ProductOperand Q, ProductOperand K, ProductOperand V) SplitHeads(ArrayView<float> qkv, ArrayView<float> qkvBias, ArrayView<float> heads,
        ArrayView<ushort> heads16, AttentionGeometry g, bool round = true)
    {
        long e = (long)g.Batch * g.Tokens * g.Dim;
        using (_kernels.SubStage("layout")) return (Move(0), Move(1), Move(2));

        ProductOperand Move(int part)
        {
            ProductOperand operand = round ? Part(heads, heads16, part, e) : heads.SubView(part * e, e);
            ToHeadMajor(qkv, operand, g.Batch, new HeadLayout(g.Tokens, g.Heads, g.HeadDim, 3 * g.Dim, part * g.Dim), round, qkvBias);
            return operand;
        }
    }

    /// <summary>
    /// The heads of rowMajor (plus bias, a row's, when given) into the head-major operand: in bf16 with
    /// <paramref name="round"/> its bf16 copy, written directly when the producers write the operands (the fp32 view
    /// left unwritten), else through the fp32 view.
    /// </summary>
    private void ToHeadMajor(ArrayView<float> rowMajor, ProductOperand headMajor, int batch, HeadLayout layout, bool round,
        ArrayView<float> bias = default)
    {
        if (_fused && round)
        {
            _kernels.ToHeadMajorBf16(rowMajor, headMajor.B16, batch, layout, bias);
            return;
        }
        _kernels.ToHeadMajor(rowMajor, headMajor.F32, batch, layout, bias);
        if (round) Round(headMajor, headMajor.F32.Length);
    }

    /// <summary>The bias the attention cores add to qkv's values as they read them: empty, or one row of 3D.</summary>
    private static void CheckQkvBias(ArrayView<float> qkvBias, AttentionGeometry g) =>
        Check(qkvBias.Length == 0 || qkvBias.Length == 3L * g.Dim, "the qkv bias holds 3D values");

    /// <summary>Head-major bf16 q, k, v kept by the caller: empty, or 3e values, and only where the moves write bf16 operands themselves.</summary>
    private void CheckKeptHeads(ArrayView<ushort> qkvHeads16, long e) =>
        Check(qkvHeads16.Length == 0 || (_fused && qkvHeads16.Length >= 3 * e),
            "kept head-major q, k, v need bf16 operands from their producers and 3 B N D values");

    /// <summary>Whether P is kept: <paramref name="probabilities16"/> is empty, or (bf16 only) holds B H N N values.</summary>
    private bool CheckKeptProbabilities(ArrayView<ushort> probabilities16, AttentionGeometry g)
    {
        if (probabilities16.Length == 0) return false;
        Check(_bf16 && probabilities16.Length >= (long)g.Batch * g.Heads * g.Tokens * g.Tokens, "kept probabilities need bf16 products and B H N N values");
        return true;
    }

    /// <summary>The part of the kept P (B H, N, N) a tile of items i0.. and query rows r0.. covers: (items, rows, N), contiguous.</summary>
    private static ArrayView<ushort> KeptTile(ArrayView<ushort> probabilities16, int i0, int items, int r0, int rows, int n) =>
        probabilities16.SubView(((long)i0 * n + r0) * n, (long)items * rows * n);

    /// <summary>The output's bf16 copy: empty, or as long as the output, and only where the kernels write bf16 operands themselves.</summary>
    private void CheckOutputCopy(ArrayView<ushort> o16, long e) =>
        Check(o16.Length == 0 || (_fused && o16.Length >= e), "the output's bf16 copy needs bf16 operands from their producers and B N D values");

    /// <summary>The tiles covering items x N query rows: whole items while one fits a tile, else runs of rows of one item.</summary>
    internal IEnumerable<(int Item0, int Items, int Row0, int Rows)> Tiling(int items, int tokens)
    {
        long perItem = (long)tokens * tokens;
        int itemsPerTile = (int)Math.Clamp(TileFloats / perItem, 1, items);
        int rowsPerTile = perItem <= TileFloats ? tokens : (int)Math.Clamp(TileFloats / tokens, 1, tokens);
        for (int i0 = 0; i0 < items; i0 += itemsPerTile)
        for (int r0 = 0; r0 < tokens; r0 += rowsPerTile)
            yield return (i0, Math.Min(itemsPerTile, items - i0), r0, Math.Min(rowsPerTile, tokens - r0));
    }

    /// <summary>Part <paramref name="index"/> (e elements) of the fp32 scratch and (in bf16) of its copy.</summary>
    private ProductOperand Part(ArrayView<float> heads, ArrayView<ushort> heads16, int index, long e) =>
        new(heads.SubView(index * e, e), _bf16 ? heads16.SubView(index * e, e) : default);

    /// <summary>C = the product of A and B: the fp32 views in fp32, the bf16 copies in bf16.</summary>
    private void Product(in GemmShape shape, ProductOperand a, ProductOperand b, ArrayView<float> c)
    {
        using (_kernels.SubStage("product", 2.0 * shape.M * shape.N * shape.K * shape.Batch))
        {
            if (_bf16) _gemm.GemmBf16(shape, a.B16, b.B16, c);
            else _gemm.Sgemm(shape, a.F32, b.F32, c);
        }
    }

    /// <summary>C = the fp32 product of A and B at either precision.</summary>
    private void ProductF32(in GemmShape shape, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        using (_kernels.SubStage("product", 2.0 * shape.M * shape.N * shape.K * shape.Batch)) _gemm.Sgemm(shape, a, b, c);
    }

    /// <summary>The first <paramref name="length"/> values of the operand's fp32 view rounded into its bf16 copy (bf16 only).</summary>
    private void Round(ProductOperand x, long length)
    {
        if (_bf16) _kernels.RoundToBf16(x.F32.SubView(0, length), x.B16.SubView(0, length));
    }

    private (ArrayView<float>, ArrayView<ushort>) Heads(long floats, long halves) =>
        (_kernels.Scratch(ref _heads, floats, out _), _bf16 ? _kernels.Scratch(ref _heads16, halves, out _) : default);

    /// <summary>Scratch for <paramref name="count"/> tiles of the largest size <see cref="Tiling"/> gives.</summary>
    private (ArrayView<float>, ArrayView<ushort>) Tiles(int items, int tokens, int count)
    {
        var (_, ni, _, rows) = Tiling(items, tokens).First();
        long length = (long)count * ni * rows * tokens;
        return (_kernels.Scratch(ref _tiles, length, out _), _bf16 ? _kernels.Scratch(ref _tiles16, length, out _) : default);
    }

    private static void Check(bool ok, string what)
    {
        if (!ok) throw new ArgumentException(what + ".");
    }

    public void Dispose()
    {
        _heads?.Dispose();
        _heads16?.Dispose();
        _tiles?.Dispose();
        _tiles16?.Dispose();
        (_heads, _heads16, _tiles, _tiles16) = (null, null, null, null);
    }
}
