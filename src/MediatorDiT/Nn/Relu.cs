namespace MediatorDiT.Nn;

/// <summary>ReLU, y = max(x, 0); the backward pass uses the output: dx = dy where y &gt; 0, else 0.</summary>
internal static class Relu
{
    /// <summary>y = max(x, 0); x and y may be the same buffer.</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y) =>
        System.Numerics.Tensors.TensorPrimitives.Max(x, 0f, y);

    /// <summary>dx = dy * (y &gt; 0); dy and dx may be the same buffer.</summary>
    public static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (y.Length != dy.Length || dx.Length != dy.Length)
            throw new ArgumentException($"Relu.Backward: y {y.Length}, dy {dy.Length} and dx {dx.Length} must have one length.");
        for (int i = 0; i < y.Length; i++) dx[i] = y[i] > 0f ? dy[i] : 0f;
    }
}
