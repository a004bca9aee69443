using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// LayerNorm followed by adaLN modulation, per image b: y = LN(x) * (1 + scale_b) + shift_b.
/// x, y: (B*N, D); shift/scale are D-wide slices of each image's modulation row (B, k*D).
/// Keeps xhat = LN(x) and 1/std for the backward pass.
/// </summary>
internal sealed class AdaLayerNorm
{
    private readonly int _dim;
    private Tensor _xhat = new(0), _mean = new(0), _rstd = new(0), _scratch = new(0); // shared between blocks for inference

    public AdaLayerNorm(int dim) => _dim = dim;

    /// <summary>Inference only (see SiTBlock.ShareForwardBuffers): use <paramref name="owner"/>'s buffers.</summary>
    internal void ShareForwardBuffers(AdaLayerNorm owner) =>
        (_xhat, _mean, _rstd, _scratch) = (owner._xhat, owner._mean, owner._rstd, owner._scratch);

    public Tensor Normalized => _xhat;

    /// <param name="mod">modulation (B, modWidth); shift at column shiftCol, scale at scaleCol</param>
    public void Forward(Tensor x, Tensor mod, int shiftCol, int scaleCol, Tensor y, int batch)
    {
        int d = _dim, rows = x.Length / d, n = rows / batch, mw = mod.Length / batch;
        _xhat.EnsureShape(rows, d);
        _mean.EnsureShape(rows);
        _rstd.EnsureShape(rows);
        float[] xs = x.Data, xh = _xhat.Data, ys = y.Data, m = mod.Data, mean = _mean.Data, rstd = _rstd.Data;
        ParallelLoop.For(batch, b =>
        {
            LayerNorm.Forward(xs.AsSpan(b * n * d, n * d), xh.AsSpan(b * n * d, n * d), mean.AsSpan(b * n, n), rstd.AsSpan(b * n, n), n, d);
            var shift = m.AsSpan(b * mw + shiftCol, d);
            var scale = m.AsSpan(b * mw + scaleCol, d);
            for (int r = b * n; r < (b + 1) * n; r++)
            {
                var yr = ys.AsSpan(r * d, d);
                TensorPrimitives.MultiplyAdd(xh.AsSpan(r * d, d), scale, xh.AsSpan(r * d, d), yr); // xhat*scale + xhat
                TensorPrimitives.Add(yr, shift, yr);
            }
        });
    }

    /// <summary>
    /// dy -> dx (overwritten or added), and d(shift), d(scale) accumulated into dMod's columns.
    /// x is the forward input (to recompute nothing else than what LayerNorm's backward needs).
    /// </summary>
    public void Backward(Tensor x, Tensor mod, int shiftCol, int scaleCol, Tensor dy, Tensor dMod, Tensor dx, int batch, bool accumulate)
    {
        int d = _dim, rows = x.Length / d, n = rows / batch, mw = mod.Length / batch;
        _scratch.EnsureShape(batch, 3, d);
        float[] xs = x.Data, xh = _xhat.Data, dys = dy.Data, m = mod.Data, dm = dMod.Data, dxs = dx.Data;
        float[] mean = _mean.Data, rstd = _rstd.Data, scr = _scratch.Data;
        ParallelLoop.For(batch, b =>
        {
            var scale = m.AsSpan(b * mw + scaleCol, d);
            var dShift = dm.AsSpan(b * mw + shiftCol, d);
            var dScale = dm.AsSpan(b * mw + scaleCol, d);
            var dxhat = scr.AsSpan(b * 3 * d, d);
            var lnGrad = scr.AsSpan(b * 3 * d + d, d);
            var lnScratch = scr.AsSpan(b * 3 * d + 2 * d, d);
            for (int r = b * n; r < (b + 1) * n; r++)
            {
                var g = dys.AsSpan(r * d, d);
                TensorPrimitives.Add(dShift, g, dShift);
                TensorPrimitives.MultiplyAdd(g, xh.AsSpan(r * d, d), dScale, dScale);
                TensorPrimitives.MultiplyAdd(g, scale, g, dxhat); // d(xhat) = g * (1 + scale)
                var dxr = dxs.AsSpan(r * d, d);
                LayerNorm.Backward(xs.AsSpan(r * d, d), mean.AsSpan(r, 1), rstd.AsSpan(r, 1), dxhat,
                    accumulate ? lnGrad : dxr, lnScratch, 1, d);
                if (accumulate) TensorPrimitives.Add(dxr, lnGrad, dxr);
            }
        });
    }
}
