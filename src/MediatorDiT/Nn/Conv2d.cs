using MediatorDiT.Tensors;

namespace MediatorDiT.Nn;

/// <summary>
/// nn.Conv2d (groups = 1) on NCHW: x (B, in, H, W) -> y (B, out, OH, OW), weight (out, in, kh, kw),
/// optional bias (out). Per image, y (out, OH*OW) = W (out, in*kh*kw) x col (in*kh*kw, OH*OW), where col
/// is built (im2col) for a band of output rows at a time so the buffer stays small. The output rows are
/// split into one contiguous range per thread; each range runs its own im2col + GEMM.
/// </summary>
internal static class Conv2d
{
    /// <summary>
    /// Default size of one im2col band, in floats (4 MB per thread). On the 2-core development VM, bands
    /// of 1-4 MB decoded the SD VAE about 10% faster than 16 MB ones.
    /// </summary>
    public const int DefaultBandFloats = 1 << 20;

    /// <summary>
    /// x (B, in, H, W) -> y (B, out, OH, OW) = conv(x) + bias. <paramref name="bandFloats"/> bounds one
    /// im2col band (at least one output row is taken per band).
    /// </summary>
    public static void Forward(Tensor x, Tensor weight, Tensor? bias, Tensor y, Conv2dGeometry g, int batch, int height, int width,
        Conv2dWorkspace? workspace = null, int bandFloats = DefaultBandFloats)
    {
        g.Validate(height, width);
        int oh = g.OutputHeight(height), ow = g.OutputWidth(width), plane = oh * ow;
        int inPer = g.InChannels * height * width, outPer = g.OutChannels * plane, k = g.PatchSize;
        if (x.Length < batch * inPer || y.Length < batch * outPer || weight.Length != g.OutChannels * k ||
            (bias is not null && bias.Length != g.OutChannels))
            throw new ArgumentException($"Conv2d: buffers do not fit {g} on {batch}x{height}x{width} " +
                                        $"(x {x.Length}, y {y.Length}, weight {weight.Length}, bias {bias?.Length}).");

        // Bands from the shape alone: their widths are GEMM shapes (see ParallelLoop.FixedParts).
        int parts = ParallelLoop.FixedPartsFor(oh);
        int rowsPerBand = Math.Clamp(bandFloats / Math.Max(1, k * ow), 1, (oh + parts - 1) / parts);
        if (!g.IsPointwise)
        {
            workspace ??= new Conv2dWorkspace();
            workspace.Reserve(parts, k * rowsPerBand * ow);
        }

        for (int b = 0; b < batch; b++)
        {
            int xo = b * inPer, yo = b * outPer;
            var yImage = y.Span.Slice(yo, outPer);
            for (int co = 0; co < g.OutChannels; co++)
                yImage.Slice(co * plane, plane).Fill(bias is null ? 0f : bias.Data[co]);

            ParallelLoop.For(parts, part =>
            {
                int r0 = (int)((long)oh * part / parts), r1 = (int)((long)oh * (part + 1) / parts);
                for (int band = r0; band < r1; band += rowsPerBand)
                {
                    int bandEnd = Math.Min(r1, band + rowsPerBand), n = (bandEnd - band) * ow;
                    var c = y.Data.AsSpan(yo + band * ow);
                    if (g.IsPointwise)
                    {
                        // 1x1: the input pixels are already the columns.
                        Gemm.Sgemm(false, false, g.OutChannels, n, k, 1f, weight.Span, k,
                            x.Data.AsSpan(xo + band * ow), plane, 1f, c, plane);
                    }
                    else
                    {
                        var col = workspace![part].AsSpan(0, k * n);
                        Im2Col(x.Data.AsSpan(xo, inPer), g, height, width, ow, band, bandEnd, col);
                        Gemm.Sgemm(false, false, g.OutChannels, n, k, 1f, weight.Span, k, col, n, 1f, c, plane);
                    }
                }
            });
        }
    }

    /// <summary>
    /// col (in*kh*kw, (r1-r0)*OW) for output rows [r0, r1): row (ci, ky, kx), column (oy, ox) holds
    /// x[ci, oy*sh - padTop + ky, ox*sw - padLeft + kx], zero outside the image.
    /// </summary>
    internal static void Im2Col(ReadOnlySpan<float> x, Conv2dGeometry g, int height, int width, int ow, int r0, int r1, Span<float> col)
    {
        int n = (r1 - r0) * ow;
        for (int ci = 0; ci < g.InChannels; ci++)
        {
            var xc = x.Slice(ci * height * width, height * width);
            for (int ky = 0; ky < g.KernelH; ky++)
            for (int kx = 0; kx < g.KernelW; kx++)
            {
                var row = col.Slice(((ci * g.KernelH + ky) * g.KernelW + kx) * n, n);
                // Valid output columns: 0 <= ox*sw - padLeft + kx < width.
                int shift = kx - g.PadLeft;
                int oxStart = shift >= 0 ? 0 : (-shift + g.StrideW - 1) / g.StrideW;
                int oxEnd = Math.Min(ow, (width - 1 - shift) / g.StrideW + 1);
                if (width - 1 - shift < 0) oxEnd = 0;
                for (int oy = r0; oy < r1; oy++)
                {
                    var dst = row.Slice((oy - r0) * ow, ow);
                    int iy = oy * g.StrideH - g.PadTop + ky;
                    if ((uint)iy >= (uint)height || oxStart >= oxEnd)
                    {
                        dst.Clear();
                        continue;
                    }
                    dst[..oxStart].Clear();
                    dst[oxEnd..].Clear();
                    var src = xc.Slice(iy * width, width);
                    if (g.StrideW == 1)
                    {
                        src.Slice(oxStart + shift, oxEnd - oxStart).CopyTo(dst[oxStart..oxEnd]);
                    }
                    else
                    {
                        for (int ox = oxStart; ox < oxEnd; ox++) dst[ox] = src[ox * g.StrideW + shift];
                    }
                }
            }
        }
    }
}

/// <summary>The direct seven-loop convolution (double accumulation) that <see cref="Conv2d"/> is tested against.</summary>
internal static class ReferenceConv2d
{
    /// <summary>x (B, in, H, W), weight (out, in, kh, kw), bias (out) or empty -> y (B, out, OH, OW).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y,
        Conv2dGeometry g, int batch, int height, int width)
    {
        int oh = g.OutputHeight(height), ow = g.OutputWidth(width);
        for (int b = 0; b < batch; b++)
        for (int co = 0; co < g.OutChannels; co++)
        for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
        {
            double s = bias.IsEmpty ? 0 : bias[co];
            for (int ci = 0; ci < g.InChannels; ci++)
            for (int ky = 0; ky < g.KernelH; ky++)
            for (int kx = 0; kx < g.KernelW; kx++)
            {
                int iy = oy * g.StrideH - g.PadTop + ky, ix = ox * g.StrideW - g.PadLeft + kx;
                if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;
                s += (double)weight[((co * g.InChannels + ci) * g.KernelH + ky) * g.KernelW + kx] *
                     x[((b * g.InChannels + ci) * height + iy) * width + ix];
            }
            y[((b * g.OutChannels + co) * oh + oy) * ow + ox] = (float)s;
        }
    }
}
