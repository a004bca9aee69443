namespace MediatorDiT.Nn;

/// <summary>
/// Row softmax with the row maximum subtracted first, so large logits never overflow
/// (TensorPrimitives.SoftMax does not subtract it). x, y: (rows, cols); y may alias x.
/// </summary>
internal static class Softmax
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
            ForwardRow(x.Slice(r * cols, cols), y.Slice(r * cols, cols));
    }

    public static void ForwardRow(ReadOnlySpan<float> x, Span<float> y)
    {
        if (!x.Overlaps(y)) x.CopyTo(y);
        SoftmaxRows.Forward(y[..x.Length], default);
    }

    /// <summary>dx = y * (dy - sum(dy * y)) per row; dx may alias dy.</summary>
    public static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        if (!dy.Overlaps(dx)) dy[..(rows * cols)].CopyTo(dx);
        for (int r = 0; r < rows; r++)
            SoftmaxRows.Backward(y.Slice(r * cols, cols), dx.Slice(r * cols, cols));
    }
}

/// <summary>Plain scalar softmax (double accumulation) that the fast one is tested against.</summary>
internal static class ReferenceSoftmax
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            float max = float.NegativeInfinity;
            for (int j = 0; j < cols; j++) max = Math.Max(max, x[r * cols + j]);
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += Math.Exp(x[r * cols + j] - max);
            for (int j = 0; j < cols; j++) y[r * cols + j] = (float)(Math.Exp(x[r * cols + j] - max) / sum);
        }
    }

    public static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            double dot = 0;
            for (int j = 0; j < cols; j++) dot += (double)y[r * cols + j] * dy[r * cols + j];
            for (int j = 0; j < cols; j++) dx[r * cols + j] = (float)(y[r * cols + j] * (dy[r * cols + j] - dot));
        }
    }
}
