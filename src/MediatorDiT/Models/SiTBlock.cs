using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// A transformer block with adaLN-Zero conditioning (DiT/SiT):
///   shift1, scale1, gate1, shift2, scale2, gate2 = Linear(SiLU(c)) (B, 6D)
///   x = x + gate1 * attn(LN(x) * (1 + scale1) + shift1)
///   x = x + gate2 * mlp(LN(x) * (1 + scale2) + shift2),  mlp = fc2(GELU_tanh(fc1(.)))
/// The residual stream x (B*N, D) is updated in place.
/// </summary>
internal sealed partial class SiTBlock
{
    private readonly int _dim, _hidden;
    public IAttention Attention { get; }
    public Parameter Fc1Weight { get; }
    public Parameter Fc1Bias { get; }
    public Parameter Fc2Weight { get; }
    public Parameter Fc2Bias { get; }
    public Parameter AdaWeight { get; }
    public Parameter AdaBias { get; }
    public IReadOnlyList<Parameter> Parameters { get; }

    private readonly AdaLayerNorm _norm1, _norm2;
    // fc1 and fc2 weights packed once per forward for the MLP's row blocks; blocks run one after another,
    // so a model's blocks share one pair (see SharePackedWeights).
    private PackedMatrix _fc1Packed = new(), _fc2Packed = new();
    private int _batch;
    // Saved activations: block input, stream after attention, modulated norms, attention out, MLP hidden.
    private readonly Tensor _mod = new(0);
    // Not readonly: in inference every block may point these at one shared set (see ShareForwardBuffers).
    private Tensor _xIn = new(0), _xMid = new(0), _h1 = new(0), _h2 = new(0), _attn = new(0);
    private Tensor _fc1 = new(0), _gelu = new(0), _mlp = new(0);
    private readonly Tensor _dMod = new(0), _dH = new(0), _dAttn = new(0), _dHidden = new(0), _dMid = new(0);

    public SiTBlock(string prefix, ModelConfig config)
    {
        int d = config.HiddenSize;
        _dim = d;
        _hidden = config.MlpHidden;
        Attention = AttentionKinds.For(config).Create(prefix + "attn.", config);
        Fc1Weight = new Parameter(prefix + "mlp.fc1.weight", [_hidden, d]);
        Fc1Bias = new Parameter(prefix + "mlp.fc1.bias", [_hidden]);
        Fc2Weight = new Parameter(prefix + "mlp.fc2.weight", [d, _hidden]);
        Fc2Bias = new Parameter(prefix + "mlp.fc2.bias", [d]);
        AdaWeight = new Parameter(prefix + "adaLN_modulation.1.weight", [6 * d, d]);
        AdaBias = new Parameter(prefix + "adaLN_modulation.1.bias", [6 * d]);
        Parameters = [.. Attention.Parameters, Fc1Weight, Fc1Bias, Fc2Weight, Fc2Bias, AdaWeight, AdaBias];
        _norm1 = new AdaLayerNorm(d);
        _norm2 = new AdaLayerNorm(d);
    }

    /// <summary>
    /// Uses <paramref name="owner"/>'s forward buffers (residual copies, norms' outputs, MLP hidden rows) instead
    /// of this block's own, or fresh own ones when null. Blocks run one after another, so in inference they
    /// can all write the same buffers; the backward pass needs each block's own.
    /// </summary>
    internal void ShareForwardBuffers(SiTBlock? owner)
    {
        if (owner is null)
        {
            _xIn = new(0); _xMid = new(0); _h1 = new(0); _h2 = new(0); _attn = new(0);
            _fc1 = new(0); _gelu = new(0); _mlp = new(0);
            return;
        }
        _xIn = owner._xIn; _xMid = owner._xMid; _h1 = owner._h1; _h2 = owner._h2; _attn = owner._attn;
        _fc1 = owner._fc1; _gelu = owner._gelu; _mlp = owner._mlp;
    }

    /// <summary>Packs this block's MLP weights into <paramref name="owner"/>'s buffers (they are rebuilt at every forward).</summary>
    internal void SharePackedWeights(SiTBlock owner)
    {
        _fc1Packed = owner._fc1Packed;
        _fc2Packed = owner._fc2Packed;
    }

    /// <summary>Output of the attention module in the last forward (B*N, D), before gating.</summary>
    public Tensor AttentionOutput => _attn;

    /// <param name="x">residual stream (B*N, D), updated in place</param>
    /// <param name="siluC">SiLU of the conditioning vector (B, D)</param>
    /// <param name="batch">B, the number of images (x holds N rows each)</param>
    public void Forward(Tensor x, Tensor siluC, int batch)
    {
        int d = _dim, rows = x.Length / d;
        _batch = batch;
        _xIn.EnsureShape(rows, d);
        _xMid.EnsureShape(rows, d);
        _h1.EnsureShape(rows, d);
        _h2.EnsureShape(rows, d);
        _attn.EnsureShape(rows, d);
        _mlp.EnsureShape(rows, d);
        _fc1.EnsureShape(rows, _hidden);
        _gelu.EnsureShape(rows, _hidden);
        _mod.EnsureShape(batch, 6 * d);
        using (OpProfiler.Time("block.adaLN"))
            Linear.Forward(siluC.Span, AdaWeight.Value.Span, AdaBias.Value.Span, _mod.Span, batch, d, 6 * d);
        using (OpProfiler.Time("block.norm+gate"))
        {
            _xIn.CopyFrom(x);
            _norm1.Forward(_xIn, _mod, 0, d, _h1, batch);
        }
        AttentionInputObserver?.Invoke(_h1, batch);
        using (OpProfiler.Time("attn"))
            Attention.Forward(_h1, _attn, batch);
        using (OpProfiler.Time("block.mlp"))
        {
            // Fused per row block, parallel over blocks: gated residual, LayerNorm + modulation, fc1 + bias,
            // GELU, fc2 + bias, gated residual; each block's hidden rows are still in cache for the next op.
            int n = rows / batch;
            _norm2.Prepare(rows);
            var blocks = RowBlocks.For(rows);
            // W^T packed once here, not once per row block (both threads share it).
            Linear.PackWeight(_fc1Packed, Fc1Weight.Value.Span, d, _hidden, blocks[0].End);
            Linear.PackWeight(_fc2Packed, Fc2Weight.Value.Span, _hidden, d, blocks[0].End);
            ParallelLoop.For(blocks.Count, i =>
            {
                var (r0, r1) = blocks[i];
                MlpRows(x, n, r0, r1);
            });
        }
    }

    /// <summary>
    /// Rows [r0, r1) of: xMid = xIn + gate1 * attn; h2 = LN(xMid) (1 + scale2) + shift2;
    /// x = xMid + gate2 * fc2(GELU(fc1(h2))). Products inside run on the calling thread.
    /// </summary>
    private void MlpRows(Tensor x, int tokensPerImage, int r0, int r1)
    {
        int d = _dim, hid = _hidden, rs = r1 - r0;
        AddGatedRows(_xIn, _attn, 2 * d, _xMid, tokensPerImage, r0, r1);
        _norm2.ForwardRows(_xMid, _mod, 3 * d, 4 * d, _h2, tokensPerImage, r0, r1);
        Linear.Forward(_h2.Span.Slice(r0 * d, rs * d), _fc1Packed, Fc1Weight.Value.Span, Fc1Bias.Value.Span, _fc1.Span.Slice(r0 * hid, rs * hid), rs, d, hid);
        Gelu.Forward(_fc1.Span.Slice(r0 * hid, rs * hid), _gelu.Span.Slice(r0 * hid, rs * hid));
        Linear.Forward(_gelu.Span.Slice(r0 * hid, rs * hid), _fc2Packed, Fc2Weight.Value.Span, Fc2Bias.Value.Span, _mlp.Span.Slice(r0 * d, rs * d), rs, hid, d);
        AddGatedRows(_xMid, _mlp, 5 * d, x, tokensPerImage, r0, r1);
    }

    /// <summary>dst = src + gate_b * branch on rows [r0, r1), gate at column gateCol of the row's image's modulation.</summary>
    private void AddGatedRows(Tensor src, Tensor branch, int gateCol, Tensor dst, int tokensPerImage, int r0, int r1)
    {
        int d = _dim;
        var mod = _mod.Span;
        for (int r = r0; r < r1; r++)
            GatedResidual.Forward(src.Span.Slice(r * d, d), branch.Span.Slice(r * d, d), mod.Slice(r / tokensPerImage * 6 * d + gateCol, d),
                dst.Span.Slice(r * d, d));
    }

    /// <summary>d(gate_b) += sum_rows dy * branch; dBranch = gate_b * dy. Parallel over images (each owns its gate row).</summary>
    private void GatedBackward(Tensor dy, Tensor branch, int gateCol, Tensor dBranch, int batch)
    {
        int d = _dim, n = dy.Length / d / batch;
        float[] mod = _mod.Data, dMod = _dMod.Data, g = dy.Data, br = branch.Data, db = dBranch.Data;
        ParallelLoop.For(batch, b =>
        {
            var gate = mod.AsSpan(b * 6 * d + gateCol, d);
            var dGate = dMod.AsSpan(b * 6 * d + gateCol, d);
            for (int r = b * n; r < (b + 1) * n; r++)
                GatedResidual.Backward(g.AsSpan(r * d, d), br.AsSpan(r * d, d), gate, dGate, db.AsSpan(r * d, d));
        });
    }

    /// <param name="dx">dL/d(block output) on entry, dL/d(block input) on exit (B*N, D)</param>
    /// <param name="siluC">the forward's SiLU(c) (B, D)</param>
    /// <param name="dSiluC">dL/d(SiLU(c)) (B, D), accumulated</param>
    public void Backward(Tensor dx, Tensor siluC, Tensor dSiluC)
    {
        int d = _dim, rows = dx.Length / d, batch = _batch;
        _dMod.EnsureShape(batch, 6 * d);
        _dMod.Zero();
        _dH.EnsureShape(rows, d);
        _dAttn.EnsureShape(rows, d);
        _dMid.EnsureShape(rows, d);
        _dHidden.EnsureShape(rows, _hidden);

        // MLP branch: x_out = xMid + gate2 * fc2(gelu(fc1(h2))).
        using (OpProfiler.Time("bwd.block.norm+gate"))
            GatedBackward(dx, _mlp, 5 * d, _dAttn, batch);
        using (OpProfiler.Time("bwd.mlp.fc2"))
            Linear.Backward(_gelu.Span, Fc2Weight.Value.Span, _dAttn.Span, Fc2Weight.Grad!.Span, Fc2Bias.Grad!.Span,
                _dHidden.Span, rows, _hidden, d);
        using (OpProfiler.Time("bwd.mlp.gelu"))
        {
            float[] fc1 = _fc1.Data, dh = _dHidden.Data;
            int hid = _hidden;
            var blocks = RowBlocks.For(rows);
            ParallelLoop.For(blocks.Count, i =>
            {
                var (r0, r1) = blocks[i];
                var span = dh.AsSpan(r0 * hid, (r1 - r0) * hid);
                Gelu.Backward(fc1.AsSpan(r0 * hid, (r1 - r0) * hid), span, span);
            });
        }
        using (OpProfiler.Time("bwd.mlp.fc1"))
            Linear.Backward(_h2.Span, Fc1Weight.Value.Span, _dHidden.Span, Fc1Weight.Grad!.Span, Fc1Bias.Grad!.Span,
                _dH.Span, rows, d, _hidden);
        using (OpProfiler.Time("bwd.block.norm+gate"))
        {
            _dMid.CopyFrom(dx);
            _norm2.Backward(_xMid, _mod, 3 * d, 4 * d, _dH, _dMod, _dMid, batch, accumulate: true);
            // Attention branch: xMid = xIn + gate1 * attn(h1).
            GatedBackward(_dMid, _attn, 2 * d, _dAttn, batch);
        }
        using (OpProfiler.Time("bwd.attn"))
            Attention.Backward(_dAttn, _dH);
        using (OpProfiler.Time("bwd.block.norm+gate"))
        {
            dx.CopyFrom(_dMid);
            _norm1.Backward(_xIn, _mod, 0, d, _dH, _dMod, dx, batch, accumulate: true);
        }
        // adaLN projection: mod = siluC W^T + b.
        using (OpProfiler.Time("bwd.block.adaLN"))
            Linear.Backward(siluC.Span, AdaWeight.Value.Span, _dMod.Span, AdaWeight.Grad!.Span, AdaBias.Grad!.Span,
                dSiluC.Span, batch, d, 6 * d, accumulateDx: true);
    }
}
