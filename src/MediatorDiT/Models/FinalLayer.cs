using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// shift, scale = Linear(SiLU(c)) (B, 2D); out = Linear(LN(x) * (1 + scale) + shift) (B*N, p*p*outC).
/// </summary>
internal sealed class FinalLayer
{
    private readonly int _d, _out;
    public Parameter LinearWeight { get; }
    public Parameter LinearBias { get; }
    public Parameter AdaWeight { get; }
    public Parameter AdaBias { get; }
    private readonly AdaLayerNorm _norm;
    private readonly Tensor _mod = new(0), _h = new(0), _x = new(0), _dMod = new(0), _dH = new(0);
    private int _batch;

    public FinalLayer(int dim, int patch, int outChannels)
    {
        _d = dim;
        _out = patch * patch * outChannels;
        LinearWeight = new Parameter("final_layer.linear.weight", [_out, dim]);
        LinearBias = new Parameter("final_layer.linear.bias", [_out]);
        AdaWeight = new Parameter("final_layer.adaLN_modulation.1.weight", [2 * dim, dim]);
        AdaBias = new Parameter("final_layer.adaLN_modulation.1.bias", [2 * dim]);
        _norm = new AdaLayerNorm(dim);
    }

    public void Forward(Tensor x, Tensor siluC, Tensor output, int batch)
    {
        int rows = x.Length / _d;
        _batch = batch;
        _mod.EnsureShape(batch, 2 * _d);
        _h.EnsureShape(rows, _d);
        _x.EnsureShape(rows, _d);
        _x.CopyFrom(x);
        Linear.Forward(siluC.Span, AdaWeight.Value.Span, AdaBias.Value.Span, _mod.Span, batch, _d, 2 * _d);
        _norm.Forward(_x, _mod, 0, _d, _h, batch);
        Linear.Forward(_h.Span, LinearWeight.Value.Span, LinearBias.Value.Span, output.Span, rows, _d, _out);
    }

    /// <summary>dOutput (B*N, p*p*outC) -> dx (B*N, D) overwritten; dSiluC (B, D) accumulated.</summary>
    public void Backward(Tensor dOutput, Tensor siluC, Tensor dx, Tensor dSiluC)
    {
        int rows = _x.Length / _d, batch = _batch;
        _dMod.EnsureShape(batch, 2 * _d);
        _dMod.Zero();
        _dH.EnsureShape(rows, _d);
        Linear.Backward(_h.Span, LinearWeight.Value.Span, dOutput.Span, LinearWeight.Grad!.Span, LinearBias.Grad!.Span,
            _dH.Span, rows, _d, _out);
        _norm.Backward(_x, _mod, 0, _d, _dH, _dMod, dx, batch, accumulate: false);
        Linear.Backward(siluC.Span, AdaWeight.Value.Span, _dMod.Span, AdaWeight.Grad!.Span, AdaBias.Grad!.Span,
            dSiluC.Span, batch, _d, 2 * _d, accumulateDx: true);
    }
}
