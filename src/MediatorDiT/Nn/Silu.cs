using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Nn;

/// <summary>SiLU y = x * sigmoid(x), used before every adaLN projection and inside the timestep MLP.</summary>
internal static class Silu
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Overlaps(y)) throw new ArgumentException("Silu.Forward needs separate input and output.");
        TensorPrimitives.Sigmoid(x, y);
        TensorPrimitives.Multiply(x, y, y);
    }

    /// <summary>dx = dy * s (1 + x (1 - s)), s = sigmoid(x). dx must not alias x.</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float s = 1f / (1f + MathF.Exp(-x[i]));
            dx[i] = dy[i] * s * (1f + x[i] * (1f - s));
        }
    }
}
