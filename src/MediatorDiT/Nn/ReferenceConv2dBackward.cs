namespace MediatorDiT.Nn;

/// <summary>
/// The direct loops for the gradients of a groups=1 convolution (double accumulation), which
/// <see cref="Conv2dBatch.Backward"/> is tested against: for y[b,co,oy,ox] = bias[co] + sum W[co,ci,ky,kx] x[b,ci,iy,ix],
/// dW[co,ci,ky,kx] = sum dy[b,co,oy,ox] x[b,ci,iy,ix], db[co] = sum dy[b,co,..], dx[b,ci,iy,ix] = sum dy W.
/// </summary>
internal static class ReferenceConv2dBackward
{
    /// <summary>Overwrites dW, db (may be empty) and dx (may be empty).</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> dy,
        Span<float> dWeight, Span<float> dBias, Span<float> dx, Conv2dGeometry g, int batch, int height, int width)
    {
        int oh = g.OutputHeight(height), ow = g.OutputWidth(width);
        var dw = new double[dWeight.Length];
        var db = new double[g.OutChannels];
        var dxs = new double[dx.IsEmpty ? 0 : batch * g.InChannels * height * width];
        for (int b = 0; b < batch; b++)
        for (int co = 0; co < g.OutChannels; co++)
        for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
        {
            double d = dy[((b * g.OutChannels + co) * oh + oy) * ow + ox];
            db[co] += d;
            for (int ci = 0; ci < g.InChannels; ci++)
            for (int ky = 0; ky < g.KernelH; ky++)
            for (int kx = 0; kx < g.KernelW; kx++)
            {
                int iy = oy * g.StrideH - g.PadTop + ky, ix = ox * g.StrideW - g.PadLeft + kx;
                if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;
                int wi = ((co * g.InChannels + ci) * g.KernelH + ky) * g.KernelW + kx;
                int xi = ((b * g.InChannels + ci) * height + iy) * width + ix;
                dw[wi] += d * x[xi];
                if (dxs.Length > 0) dxs[xi] += d * weight[wi];
            }
        }
        for (int i = 0; i < dw.Length; i++) dWeight[i] = (float)dw[i];
        if (!dBias.IsEmpty) for (int i = 0; i < db.Length; i++) dBias[i] = (float)db[i];
        for (int i = 0; i < dxs.Length; i++) dx[i] = (float)dxs[i];
    }
}
