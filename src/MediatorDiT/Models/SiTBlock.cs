using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
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
public sealed class SiTBlock
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
    private int _batch;
    // Saved activations: block input, stream after attention, modulated norms, attention out, MLP hidden.
    private readonly Tensor _mod = new(0), _xIn = new(0), _xMid = new(0), _h1 = new(0), _h2 = new(0), _attn = new(0);
    private readonly Tensor _fc1 = new(0), _gelu = new(0), _mlp = new(0);
    private readonly Tensor _dMod = new(0), _dH = new(0), _dAttn = new(0), _dHidden = new(0), _dMid = new(0);

    public SiTBlock(string prefix, ModelConfig config)
    {
        int d = config.HiddenSize;
        _dim = d;
        _hidden = config.MlpHidden;
        Attention = config.Attention == AttentionKind.Full
            ? new FullAttention(prefix + "attn.", d, config.NumHeads)
            : new MediatorAttention(prefix + "attn.", d, config.NumHeads, config.GridSize, config.MediatorNum);
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

    /// <summary>Output of the attention module in the last forward (B*N, D), before gating.</summary>
    public Tensor AttentionOutput => _attn;

    /// <param name="x">residual stream (B*N, D), updated in place</param>
    /// <param name="siluC">SiLU of the conditioning vector (B, D)</param>
    public void Forward(Tensor x, Tensor siluC, int batch)
    {
        int d = _dim, rows = x.Length / d;
        _batch = batch;
        foreach (var t in new[] { _xIn, _xMid, _h1, _h2, _attn, _mlp }) t.EnsureShape(rows, d);
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
        using (OpProfiler.Time("attn"))
            Attention.Forward(_h1, _attn, batch);
        using (OpProfiler.Time("block.norm+gate"))
        {
            AddGated(_xIn, _attn, 2 * d, _xMid, batch);
            _norm2.Forward(_xMid, _mod, 3 * d, 4 * d, _h2, batch);
        }
        using (OpProfiler.Time("mlp.fc1"))
            Linear.Forward(_h2.Span, Fc1Weight.Value.Span, Fc1Bias.Value.Span, _fc1.Span, rows, d, _hidden);
        using (OpProfiler.Time("mlp.gelu"))
            Gelu.Forward(_fc1.Span, _gelu.Span);
        using (OpProfiler.Time("mlp.fc2"))
            Linear.Forward(_gelu.Span, Fc2Weight.Value.Span, Fc2Bias.Value.Span, _mlp.Span, rows, _hidden, d);
        using (OpProfiler.Time("block.norm+gate"))
            AddGated(_xMid, _mlp, 5 * d, x, batch);
    }

    /// <summary>dst = src + gate_b * branch, gate at column gateCol of each image's modulation row.</summary>
    private void AddGated(Tensor src, Tensor branch, int gateCol, Tensor dst, int batch)
    {
        int d = _dim, n = src.Length / d / batch;
        var mod = _mod.Span;
        for (int b = 0; b < batch; b++)
        {
            var gate = mod.Slice(b * 6 * d + gateCol, d);
            for (int r = b * n; r < (b + 1) * n; r++)
                TensorPrimitives.MultiplyAdd(branch.Span.Slice(r * d, d), gate, src.Span.Slice(r * d, d), dst.Span.Slice(r * d, d));
        }
    }

    /// <summary>d(gate_b) += sum_rows dy * branch; dBranch = gate_b * dy.</summary>
    private void GatedBackward(Tensor dy, Tensor branch, int gateCol, Tensor dBranch, int batch)
    {
        int d = _dim, n = dy.Length / d / batch;
        var mod = _mod.Span;
        var dMod = _dMod.Span;
        for (int b = 0; b < batch; b++)
        {
            var gate = mod.Slice(b * 6 * d + gateCol, d);
            var dGate = dMod.Slice(b * 6 * d + gateCol, d);
            for (int r = b * n; r < (b + 1) * n; r++)
            {
                var g = dy.Span.Slice(r * d, d);
                TensorPrimitives.MultiplyAdd(g, branch.Span.Slice(r * d, d), dGate, dGate);
                TensorPrimitives.Multiply(g, gate, dBranch.Span.Slice(r * d, d));
            }
        }
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
            Gelu.Backward(_fc1.Span, _dHidden.Span, _dHidden.Span);
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
