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

    public Tensor Normalized => _xhat;

    /// <summary>y = LN(x) * (1 + scale) + shift for all rows, in parallel row blocks; keeps xhat and 1/std for the backward pass.</summary>
    /// <param name="x">input rows (B*N, D)</param>
    /// <param name="mod">modulation (B, modWidth); shift at column shiftCol, scale at scaleCol</param>
    /// <param name="shiftCol">first column of the shift in each modulation row</param>
    /// <param name="scaleCol">first column of the scale in each modulation row</param>
    /// <param name="y">output rows (B*N, D), already sized</param>
    /// <param name="batch">B, the number of images (rows / batch tokens each)</param>
    public void Forward(Tensor x, Tensor mod, int shiftCol, int scaleCol, Tensor y, int batch)
    {
        int rows = x.Length / _dim, n = rows / batch;
        Prepare(rows);
        var blocks = RowBlocks.For(rows);
        ParallelLoop.For(blocks.Count, i =>
        {
            var (r0, r1) = blocks[i];
            ForwardRows(x, mod, shiftCol, scaleCol, y, n, r0, r1);
        });
    }

    /// <summary>Sizes the saved statistics for <paramref name="rows"/> rows (call before <see cref="ForwardRows"/>).</summary>
    public void Prepare(int rows)
    {
        _xhat.EnsureShape(rows, _dim);
        _mean.EnsureShape(rows);
        _rstd.EnsureShape(rows);
    }

    /// <summary>
    /// Rows [r0, r1) of the forward pass, each in one fused pass (<see cref="AdaLayerNormKernel.ForwardRow(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, float)"/>) with
    /// the shift and scale of the row's image (row / tokensPerImage). Row ranges may run in parallel.
    /// </summary>
    public void ForwardRows(Tensor x, Tensor mod, int shiftCol, int scaleCol, Tensor y, int tokensPerImage, int r0, int r1)
    {
        int d = _dim, batch = x.Length / d / tokensPerImage, mw = mod.Length / batch;
        float[] xs = x.Data, xh = _xhat.Data, ys = y.Data, m = mod.Data, mean = _mean.Data, rstd = _rstd.Data;
        for (int r = r0; r < r1; r++)
        {
            int b = r / tokensPerImage;
            (mean[r], rstd[r]) = AdaLayerNormKernel.ForwardRow(xs.AsSpan(r * d, d), m.AsSpan(b * mw + shiftCol, d),
                m.AsSpan(b * mw + scaleCol, d), xh.AsSpan(r * d, d), ys.AsSpan(r * d, d));
        }
    }

    /// <summary>
    /// dy -> dx (overwritten or added), and d(shift), d(scale) accumulated into dMod's columns, one fused
    /// <see cref="AdaLayerNormKernel.BackwardRow(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, float, Span{float}, Span{float}, Span{float}, Span{float}, bool)"/>
    /// per row from the forward's saved xhat and 1/std; x is the forward input (only its size is read).
    /// </summary>
    public void Backward(Tensor x, Tensor mod, int shiftCol, int scaleCol, Tensor dy, Tensor dMod, Tensor dx, int batch, bool accumulate)
    {
        int d = _dim, rows = x.Length / d, n = rows / batch, mw = mod.Length / batch;
        _scratch.EnsureShape(batch, d);
        float[] xh = _xhat.Data, dys = dy.Data, m = mod.Data, dm = dMod.Data, dxs = dx.Data, rstd = _rstd.Data, scr = _scratch.Data;
        ParallelLoop.For(batch, b =>
        {
            var scale = m.AsSpan(b * mw + scaleCol, d);
            var dShift = dm.AsSpan(b * mw + shiftCol, d);
            var dScale = dm.AsSpan(b * mw + scaleCol, d);
            var dxhat = scr.AsSpan(b * d, d);
            for (int r = b * n; r < (b + 1) * n; r++)
                AdaLayerNormKernel.BackwardRow(dys.AsSpan(r * d, d), xh.AsSpan(r * d, d), scale, rstd[r], dShift, dScale, dxhat,
                    dxs.AsSpan(r * d, d), accumulate);
        });
    }
}
