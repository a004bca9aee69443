using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Nn;

/// <summary>
/// LayerNorm over the last axis without affine parameters (the adaLN blocks supply scale and shift).
/// x, y: (rows, cols); mean, rstd: (rows) saved for the backward pass.
/// </summary>
internal static class LayerNorm
{
    public const float DefaultEps = 1e-6f;

    public static void Forward(ReadOnlySpan<float> x, Span<float> y, Span<float> mean, Span<float> rstd,
        int rows, int cols, float eps = DefaultEps)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            float m = TensorPrimitives.Sum(xr) / cols;
            var yr = y.Slice(r * cols, cols);
            TensorPrimitives.Subtract(xr, m, yr);
            float v = TensorPrimitives.SumOfSquares(yr) / cols;
            float rs = 1f / MathF.Sqrt(v + eps);
            TensorPrimitives.Multiply(yr, rs, yr);
            mean[r] = m;
            rstd[r] = rs;
        }
    }

    /// <summary>
    /// dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), with xhat recomputed from x.
    /// <paramref name="scratch"/> holds one row (cols). dx is overwritten.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy, Span<float> dx, Span<float> scratch, int rows, int cols)
    {
        var xhat = scratch[..cols];
        for (int r = 0; r < rows; r++)
        {
            TensorPrimitives.Subtract(x.Slice(r * cols, cols), mean[r], xhat);
            TensorPrimitives.Multiply(xhat, rstd[r], xhat);
            var dyr = dy.Slice(r * cols, cols);
            float meanDy = TensorPrimitives.Sum(dyr) / cols;
            float meanDyX = TensorPrimitives.Dot(dyr, xhat) / cols;
            var dxr = dx.Slice(r * cols, cols);
            // dx = rstd * (dy - meanDy - xhat * meanDyX)
            TensorPrimitives.Multiply(xhat, -meanDyX, dxr);
            TensorPrimitives.Add(dxr, dyr, dxr);
            TensorPrimitives.Add(dxr, -meanDy, dxr);
            TensorPrimitives.Multiply(dxr, rstd[r], dxr);
        }
    }
}

/// <summary>Plain scalar LayerNorm (double accumulation) that the fast one is tested against.</summary>
internal static class ReferenceLayerNorm
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, Span<float> mean, Span<float> rstd,
        int rows, int cols, float eps = LayerNorm.DefaultEps)
    {
        for (int r = 0; r < rows; r++)
        {
            double m = 0;
            for (int j = 0; j < cols; j++) m += x[r * cols + j];
            m /= cols;
            double v = 0;
            for (int j = 0; j < cols; j++) v += (x[r * cols + j] - m) * (x[r * cols + j] - m);
            v /= cols;
            double rs = 1 / Math.Sqrt(v + eps);
            for (int j = 0; j < cols; j++) y[r * cols + j] = (float)((x[r * cols + j] - m) * rs);
            mean[r] = (float)m;
            rstd[r] = (float)rs;
        }
    }

    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            double sDy = 0, sDyX = 0;
            for (int j = 0; j < cols; j++)
            {
                double xh = (x[r * cols + j] - mean[r]) * rstd[r];
                sDy += dy[r * cols + j];
                sDyX += dy[r * cols + j] * xh;
            }
            for (int j = 0; j < cols; j++)
            {
                double xh = (x[r * cols + j] - mean[r]) * rstd[r];
                dx[r * cols + j] = (float)(rstd[r] * (dy[r * cols + j] - sDy / cols - xh * sDyX / cols));
            }
        }
    }
}
