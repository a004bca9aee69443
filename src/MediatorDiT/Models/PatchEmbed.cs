using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// timm PatchEmbed: a conv with kernel = stride = p, x (B, C, H, W) -> tokens (B*N, D), computed as
/// im2col (N, C*p*p) times the flattened weight (D, C*p*p)^T.
/// </summary>
internal sealed class PatchEmbed
{
    private readonly int _c, _p, _d;
    public Parameter Weight { get; }
    public Parameter Bias { get; }
    private readonly Tensor _cols = new(0), _dCols = new(0);
    private int _batch, _h, _w;

    public PatchEmbed(int inChannels, int patch, int dim)
    {
        _c = inChannels;
        _p = patch;
        _d = dim;
        Weight = new Parameter("x_embedder.proj.weight", [dim, inChannels, patch, patch]);
        Bias = new Parameter("x_embedder.proj.bias", [dim]);
    }

    public void Forward(Tensor x, Tensor tokens)
    {
        int b = x.Dim(0), h = x.Dim(2), w = x.Dim(3), k = _c * _p * _p, n = h / _p * (w / _p);
        (_batch, _h, _w) = (b, h, w);
        _cols.EnsureShape(b * n, k);
        float[] xs = x.Data, cols = _cols.Data;
        int c = _c, p = _p;
        ParallelLoop.For(b, i => Patchify.ImageToPatches(xs.AsSpan(i * c * h * w, c * h * w), cols.AsSpan(i * n * k, n * k), c, h, w, p));
        Linear.Forward(_cols.Span, Weight.Value.Span, Bias.Value.Span, tokens.Span, b * n, k, _d);
    }

    /// <summary>Accumulates weight/bias gradients and writes dL/dx (B, C, H, W).</summary>
    public void Backward(Tensor dTokens, Tensor dx)
    {
        int b = _batch, h = _h, w = _w, c = _c, p = _p, k = c * p * p, n = h / p * (w / p);
        _dCols.EnsureShape(b * n, k);
        Linear.Backward(_cols.Span, Weight.Value.Span, dTokens.Span, Weight.Grad!.Span, Bias.Grad!.Span, _dCols.Span, b * n, k, _d);
        float[] dc = _dCols.Data, dxs = dx.Data;
        ParallelLoop.For(b, i => Patchify.PatchesToImage(dc.AsSpan(i * n * k, n * k), dxs.AsSpan(i * c * h * w, c * h * w), c, h, w, p));
    }
}
