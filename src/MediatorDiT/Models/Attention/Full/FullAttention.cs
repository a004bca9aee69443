using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Models;

/// <summary>
/// Multi-head softmax self-attention as timm's Attention (keys attn.qkv, attn.proj):
/// qkv (B*N, 3D) with columns [q | k | v], each split into heads of hd channels;
/// per head O = softmax(q k^T * hd^-0.5) v.
/// Streaming: queries are processed in row tiles (at most 64K scores, or 64 rows), so at most a (tile, N) block of
/// the N x N score matrix exists at a time (per thread); the backward pass recomputes the tiles from the
/// saved row log-sum-exp, as flash attention does. Memory stays linear in N.
/// </summary>
internal sealed partial class FullAttention : IAttention
{
    public const int DefaultTileRows = 64;
    // A tile holds at most this many scores (256 KB, L2) unless 64 rows need more: at 256 tokens one tile
    // covers all queries (k and v are packed once per head, not once per 64 rows); at 4,096 tokens 64 rows.
    private const int MaxTileFloats = 1 << 16;

    /// <summary>Query rows per tile (0: automatic); tests vary it to hold tiled and single-tile results equal.</summary>
    internal int TileRows { get; set; }

    private int RowsPerTile(int n) => TileRows > 0 ? TileRows : Math.Clamp(MaxTileFloats / Math.Max(1, n), Math.Min(DefaultTileRows, n), n);
    private readonly int _dim, _heads, _headDim;
    private readonly float _scale;
    public Parameter QkvWeight { get; }
    public Parameter QkvBias { get; }
    public Parameter ProjWeight { get; }
    public Parameter ProjBias { get; }
    public IReadOnlyList<Parameter> Parameters { get; }
    public string Kind => FullAttentionKind.KindName;

    // Saved by Forward for Backward: qkv, per-head outputs (before proj), row log-sum-exp (B, H, N).
    private Tensor? _input;
    private int _batch, _tokens;
    private Tensor _qkv = new(0), _headsOut = new(0), _lse = new(0); // shared between blocks for inference
    private readonly Tensor _dqkv = new(0), _dHeads = new(0);

    public FullAttention(string prefix, int dim, int heads)
    {
        _dim = dim;
        _heads = heads;
        _headDim = dim / heads;
        _scale = 1f / MathF.Sqrt(_headDim);
        QkvWeight = new Parameter(prefix + "qkv.weight", [3 * dim, dim]);
        QkvBias = new Parameter(prefix + "qkv.bias", [3 * dim]);
        ProjWeight = new Parameter(prefix + "proj.weight", [dim, dim]);
        ProjBias = new Parameter(prefix + "proj.bias", [dim]);
        Parameters = [QkvWeight, QkvBias, ProjWeight, ProjBias];
    }

    public void Forward(Tensor input, Tensor output, int batch)
    {
        int rows = input.Length / _dim, n = rows / batch, d = _dim, hd = _headDim;
        _input = input;
        _batch = batch;
        _tokens = n;
        _qkv.EnsureShape(rows, 3 * d);
        _headsOut.EnsureShape(rows, d);
        _lse.EnsureShape(batch, _heads, n);
        using (OpProfiler.Time("attn.qkv"))
            Linear.Forward(input.Span, QkvWeight.Value.Span, QkvBias.Value.Span, _qkv.Span, rows, d, 3 * d);

        float[] qkv = _qkv.Data, o = _headsOut.Data, lse = _lse.Data;
        using (OpProfiler.Time("attn.f.core")) ParallelLoop.For(batch * _heads, bh =>
        {
            int b = bh / _heads, h = bh % _heads;
            int qOff = b * n * 3 * d + h * hd;
            int tileRows = RowsPerTile(n);
            var tile = ScratchBuffers.Get(0, tileRows * n);
            for (int r0 = 0; r0 < n; r0 += tileRows)
            {
                int rs = Math.Min(tileRows, n - r0);
                var s = tile.AsSpan(0, rs * n);
                Gemm.Sgemm(false, true, rs, n, hd, _scale, qkv.AsSpan(qOff + r0 * 3 * d), 3 * d, qkv.AsSpan(qOff + d), 3 * d, 0f, s, n);
                for (int r = 0; r < rs; r++)
                    lse[bh * n + r0 + r] = SoftmaxRows.Forward(s.Slice(r * n, n), default);
                Gemm.Sgemm(false, false, rs, hd, n, 1f, s, n, qkv.AsSpan(qOff + 2 * d), 3 * d, 0f,
                    o.AsSpan((b * n + r0) * d + h * hd), d);
            }
        });
        using (OpProfiler.Time("attn.proj"))
            Linear.Forward(_headsOut.Span, ProjWeight.Value.Span, ProjBias.Value.Span, output.Span, rows, d, d);
    }

    public void Backward(Tensor dOutput, Tensor dInput)
    {
        if (_input is null) throw new InvalidOperationException("Backward called before Forward.");
        int batch = _batch, n = _tokens, rows = batch * n, d = _dim, hd = _headDim;
        _dHeads.EnsureShape(rows, d);
        _dqkv.EnsureShape(rows, 3 * d);
        using (OpProfiler.Time("bwd.attn.proj"))
            Linear.Backward(_headsOut.Span, ProjWeight.Value.Span, dOutput.Span, ProjWeight.Grad!.Span, ProjBias.Grad!.Span,
                _dHeads.Span, rows, d, d);

        float[] qkv = _qkv.Data, o = _headsOut.Data, dO = _dHeads.Data, dqkv = _dqkv.Data, lse = _lse.Data;
        using (OpProfiler.Time("bwd.attn.f.core")) ParallelLoop.For(batch * _heads, bh =>
        {
            int b = bh / _heads, h = bh % _heads;
            int qOff = b * n * 3 * d + h * hd;
            int tileRows = RowsPerTile(n);
            var p = ScratchBuffers.Get(0, tileRows * n);
            var dp = ScratchBuffers.Get(1, tileRows * n);
            // dk and dv accumulate over query tiles; start them at zero.
            for (int r = 0; r < n; r++)
            {
                dqkv.AsSpan(qOff + r * 3 * d + d, hd).Clear();
                dqkv.AsSpan(qOff + r * 3 * d + 2 * d, hd).Clear();
            }
            for (int r0 = 0; r0 < n; r0 += tileRows)
            {
                int rs = Math.Min(tileRows, n - r0);
                var pt = p.AsSpan(0, rs * n);
                var dpt = dp.AsSpan(0, rs * n);
                var qTile = qkv.AsSpan(qOff + r0 * 3 * d);
                var dOTile = dO.AsSpan((b * n + r0) * d + h * hd);
                // Recompute P = exp(s q k^T - lse).
                Gemm.Sgemm(false, true, rs, n, hd, _scale, qTile, 3 * d, qkv.AsSpan(qOff + d), 3 * d, 0f, pt, n);
                for (int r = 0; r < rs; r++)
                    SoftmaxRows.ExpShifted(pt.Slice(r * n, n), lse[bh * n + r0 + r]);
                // dP = dO v^T; dS = P * (dP - rowsum(dO * O)); dv += P^T dO.
                Gemm.Sgemm(false, true, rs, n, hd, 1f, dOTile, d, qkv.AsSpan(qOff + 2 * d), 3 * d, 0f, dpt, n);
                for (int r = 0; r < rs; r++)
                {
                    float delta = TensorPrimitives.Dot(dOTile.Slice(r * d, hd), o.AsSpan((b * n + r0 + r) * d + h * hd, hd));
                    SoftmaxRows.Backward(pt.Slice(r * n, n), dpt.Slice(r * n, n), delta);
                }
                Gemm.Sgemm(true, false, n, hd, rs, 1f, pt, n, dOTile, d, 1f, dqkv.AsSpan(qOff + 2 * d), 3 * d);
                // dq = s dS k; dk += s dS^T q.
                Gemm.Sgemm(false, false, rs, hd, n, _scale, dpt, n, qkv.AsSpan(qOff + d), 3 * d, 0f, dqkv.AsSpan(qOff + r0 * 3 * d), 3 * d);
                Gemm.Sgemm(true, false, n, hd, rs, _scale, dpt, n, qTile, 3 * d, 1f, dqkv.AsSpan(qOff + d), 3 * d);
            }
        });
        using (OpProfiler.Time("bwd.attn.qkv"))
            Linear.Backward(_input.Span, QkvWeight.Value.Span, _dqkv.Span, QkvWeight.Grad!.Span, QkvBias.Grad!.Span,
                dInput.Span, rows, d, 3 * d);
    }

    /// <summary>Recomputes one head's (N, N) attention map of the last forward from the saved q, k.</summary>
    public void ComposedAttentionMap(int sample, int head, Span<float> map)
    {
        int n = _tokens, d = _dim;
        int qOff = sample * n * 3 * d + head * _headDim;
        Gemm.Sgemm(false, true, n, n, _headDim, _scale, _qkv.Data.AsSpan(qOff), 3 * d, _qkv.Data.AsSpan(qOff + d), 3 * d, 0f, map, n);
        Softmax.Forward(map, map, n, n);
    }
}
