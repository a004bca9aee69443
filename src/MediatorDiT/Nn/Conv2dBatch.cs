using MediatorDiT.Tensors;

namespace MediatorDiT.Nn;

/// <summary>
/// nn.Conv2d (groups = 1) forward and backward for batches of small images (classifier feature maps of
/// 32x32 and below). Each image is one im2col (K = in*kh*kw rows, P = OH*OW columns) and one GEMM; the
/// images, not the rows of one image, are split over the threads, because a 32x32 image is far too
/// little work to be worth a parallel region of its own. <see cref="Conv2d"/> suits large images.
/// The plain twins are <see cref="ReferenceConv2d.Forward"/> and <see cref="ReferenceConv2dBackward.Backward"/>.
/// </summary>
internal static class Conv2dBatch
{
    /// <summary>x (B, in, H, W) -> y (B, out, OH, OW) = conv(x) + bias (bias may be empty).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y,
        Conv2dGeometry g, int batch, int height, int width, Conv2dWorkspace workspace)
    {
        var shape = Check(x.Length, weight.Length, bias.Length, y.Length, g, batch, height, width);
        int parts = Parts(batch);
        workspace.Reserve(parts, shape.K * shape.P);
        unsafe
        {
            fixed (float* px = x, pw = weight, pb = bias, py = y)
            {
                nint ax = (nint)px, aw = (nint)pw, ab = (nint)pb, ay = (nint)py;
                int biasLength = bias.Length, weightLength = weight.Length;
                ParallelLoop.For(parts, part =>
                {
                    var xs = new ReadOnlySpan<float>((float*)ax, batch * shape.InPer);
                    var ws = new ReadOnlySpan<float>((float*)aw, weightLength);
                    var bs = new ReadOnlySpan<float>((float*)ab, biasLength);
                    var ys = new Span<float>((float*)ay, batch * shape.OutPer);
                    var col = workspace[part].AsSpan(0, shape.K * shape.P);
                    (int b0, int b1) = Range(batch, parts, part);
                    for (int b = b0; b < b1; b++)
                    {
                        var yImage = ys.Slice(b * shape.OutPer, shape.OutPer);
                        for (int co = 0; co < g.OutChannels; co++)
                            yImage.Slice(co * shape.P, shape.P).Fill(bs.IsEmpty ? 0f : bs[co]);
                        Conv2d.Im2Col(xs.Slice(b * shape.InPer, shape.InPer), g, height, width, shape.OW, 0, shape.OH, col);
                        // y (out, P) += W (out, K) col (K, P)
                        Gemm.Sgemm(false, false, g.OutChannels, shape.P, shape.K, 1f, ws, shape.K, col, shape.P, 1f, yImage, shape.P);
                    }
                });
            }
        }
    }

    /// <summary>
    /// dW += sum_b dy_b col_b^T, db += sums of dy over the pixels, and dx = col2im(W^T dy_b) (overwritten);
    /// pass an empty <paramref name="dx"/> to skip the input gradient (the first layer). The images are cut
    /// into at most eight parts by the batch size alone; each part accumulates into its own dW, db, which are
    /// added in part order, so results depend neither on timing nor on the thread count.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> dy,
        Span<float> dWeight, Span<float> dBias, Span<float> dx, Conv2dGeometry g, int batch, int height, int width,
        Conv2dWorkspace workspace)
    {
        var shape = Check(x.Length, weight.Length, dBias.Length, dy.Length, g, batch, height, width);
        if (dWeight.Length != weight.Length) throw new ArgumentException($"Conv2dBatch: dW has {dWeight.Length} floats, W {weight.Length}.");
        if (!dx.IsEmpty && dx.Length < batch * shape.InPer) throw new ArgumentException($"Conv2dBatch: dx has {dx.Length} floats, needs {batch * shape.InPer}.");
        int parts = Parts(batch);
        int wLength = weight.Length, bLength = dBias.Length;
        // Per part: col (K, P), dcol (K, P), partial dW, partial db.
        int slot = 2 * shape.K * shape.P + wLength + bLength;
        workspace.Reserve(parts, slot);
        bool wantDx = !dx.IsEmpty;
        unsafe
        {
            fixed (float* px = x, pw = weight, pdy = dy, pdx = dx)
            {
                nint ax = (nint)px, aw = (nint)pw, ady = (nint)pdy, adx = (nint)pdx;
                ParallelLoop.For(parts, part =>
                {
                    var xs = new ReadOnlySpan<float>((float*)ax, batch * shape.InPer);
                    var ws = new ReadOnlySpan<float>((float*)aw, wLength);
                    var dys = new ReadOnlySpan<float>((float*)ady, batch * shape.OutPer);
                    var buffer = workspace[part].AsSpan(0, slot);
                    var col = buffer[..(shape.K * shape.P)];
                    var dcol = buffer.Slice(shape.K * shape.P, shape.K * shape.P);
                    var dw = buffer.Slice(2 * shape.K * shape.P, wLength);
                    var db = buffer.Slice(2 * shape.K * shape.P + wLength, bLength);
                    dw.Clear();
                    db.Clear();
                    (int b0, int b1) = Range(batch, parts, part);
                    for (int b = b0; b < b1; b++)
                    {
                        var dyImage = dys.Slice(b * shape.OutPer, shape.OutPer);
                        Conv2d.Im2Col(xs.Slice(b * shape.InPer, shape.InPer), g, height, width, shape.OW, 0, shape.OH, col);
                        // dW (out, K) += dy (out, P) col^T (P, K)
                        Gemm.Sgemm(false, true, g.OutChannels, shape.K, shape.P, 1f, dyImage, shape.P, col, shape.P, 1f, dw, shape.K);
                        if (bLength > 0)
                            for (int co = 0; co < g.OutChannels; co++)
                                db[co] += System.Numerics.Tensors.TensorPrimitives.Sum(dyImage.Slice(co * shape.P, shape.P));
                        if (!wantDx) continue;
                        // dcol (K, P) = W^T (K, out) dy (out, P)
                        Gemm.Sgemm(true, false, shape.K, shape.P, g.OutChannels, 1f, ws, shape.K, dyImage, shape.P, 0f, dcol, shape.P);
                        Col2Im(dcol, g, height, width, shape.OW, shape.OH, new Span<float>((float*)adx + b * shape.InPer, shape.InPer));
                    }
                });
            }
        }
        for (int part = 0; part < parts; part++)
        {
            var buffer = workspace[part].AsSpan(0, slot);
            System.Numerics.Tensors.TensorPrimitives.Add(dWeight, buffer.Slice(2 * shape.K * shape.P, wLength), dWeight);
            if (bLength > 0) System.Numerics.Tensors.TensorPrimitives.Add(dBias, buffer.Slice(2 * shape.K * shape.P + wLength, bLength), dBias);
        }
    }

    /// <summary>
    /// The adjoint of <see cref="Conv2d.Im2Col"/> over the whole image: dx (in, H, W) = sum over the columns
    /// of col (in*kh*kw, OH*OW) scattered back to the pixels they were read from (overwrites dx).
    /// </summary>
    internal static void Col2Im(ReadOnlySpan<float> col, Conv2dGeometry g, int height, int width, int ow, int oh, Span<float> dx)
    {
        dx.Clear();
        int n = oh * ow;
        for (int ci = 0; ci < g.InChannels; ci++)
        {
            var xc = dx.Slice(ci * height * width, height * width);
            for (int ky = 0; ky < g.KernelH; ky++)
            for (int kx = 0; kx < g.KernelW; kx++)
            {
                var row = col.Slice(((ci * g.KernelH + ky) * g.KernelW + kx) * n, n);
                int shift = kx - g.PadLeft;
                int oxStart = shift >= 0 ? 0 : (-shift + g.StrideW - 1) / g.StrideW;
                int oxEnd = width - 1 - shift < 0 ? 0 : Math.Min(ow, (width - 1 - shift) / g.StrideW + 1);
                if (oxStart >= oxEnd) continue;
                for (int oy = 0; oy < oh; oy++)
                {
                    int iy = oy * g.StrideH - g.PadTop + ky;
                    if ((uint)iy >= (uint)height) continue;
                    var src = row.Slice(oy * ow, ow);
                    var dst = xc.Slice(iy * width, width);
                    if (g.StrideW == 1)
                    {
                        System.Numerics.Tensors.TensorPrimitives.Add(dst.Slice(oxStart + shift, oxEnd - oxStart), src[oxStart..oxEnd], dst.Slice(oxStart + shift, oxEnd - oxStart));
                    }
                    else
                    {
                        for (int ox = oxStart; ox < oxEnd; ox++) dst[ox * g.StrideW + shift] += src[ox];
                    }
                }
            }
        }
    }

    private readonly record struct Shape(int OH, int OW, int P, int K, int InPer, int OutPer);

    private static Shape Check(int xLength, int weightLength, int biasLength, int yLength, Conv2dGeometry g, int batch, int height, int width)
    {
        g.Validate(height, width);
        int oh = g.OutputHeight(height), ow = g.OutputWidth(width);
        var s = new Shape(oh, ow, oh * ow, g.PatchSize, g.InChannels * height * width, g.OutChannels * oh * ow);
        if (xLength < batch * s.InPer || yLength < batch * s.OutPer || weightLength != g.OutChannels * s.K ||
            (biasLength != 0 && biasLength != g.OutChannels))
            throw new ArgumentException($"Conv2dBatch: buffers do not fit {g} on {batch}x{height}x{width} " +
                                        $"(x {xLength}, y {yLength}, weight {weightLength}, bias {biasLength}).");
        return s;
    }

    // From the batch alone: the weight gradient sums per-part partials in part order (see ParallelLoop.FixedParts).
    private static int Parts(int batch) => ParallelLoop.FixedPartsFor(batch);

    private static (int Start, int End) Range(int count, int parts, int part) =>
        ((int)((long)count * part / parts), (int)((long)count * (part + 1) / parts));
}
