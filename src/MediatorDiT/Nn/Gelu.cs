using System.Numerics;
using System.Runtime.Intrinsics;

namespace MediatorDiT.Nn;

/// <summary>
/// GELU with the tanh approximation (nn.GELU(approximate="tanh")):
/// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
/// </summary>
public static class Gelu
{
    internal const float Beta = 0.7978845608028654f; // sqrt(2/pi)
    internal const float Kappa = 0.044715f;

    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= x.Length - 16; i += 16)
            {
                var v = Vector512.Create(x.Slice(i, 16));
                var t = Tanh(Vector512.Create(Beta) * (v + Vector512.Create(Kappa) * v * v * v));
                (Vector512.Create(0.5f) * v * (Vector512<float>.One + t)).CopyTo(y.Slice(i, 16));
            }
        }
        for (; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = 0.5f * v * (1f + MathF.Tanh(Beta * (v + Kappa * v * v * v)));
        }
    }

    /// <summary>dx = dy * gelu'(x); dx may alias dy.</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var beta = Vector512.Create(Beta);
            var kappa = Vector512.Create(Kappa);
            var half = Vector512.Create(0.5f);
            for (; i <= x.Length - 16; i += 16)
            {
                var v = Vector512.Create(x.Slice(i, 16));
                var v2 = v * v;
                var t = Tanh(beta * (v + kappa * v2 * v));
                var d = half * (Vector512<float>.One + t)
                        + half * v * (Vector512<float>.One - t * t) * beta * (Vector512<float>.One + Vector512.Create(3f * Kappa) * v2);
                (Vector512.Create(dy.Slice(i, 16)) * d).CopyTo(dx.Slice(i, 16));
            }
        }
        for (; i < x.Length; i++)
        {
            float v = x[i];
            float t = MathF.Tanh(Beta * (v + Kappa * v * v * v));
            float d = 0.5f * (1f + t) + 0.5f * v * (1f - t * t) * Beta * (1f + 3f * Kappa * v * v);
            dx[i] = dy[i] * d;
        }
    }

    /// <summary>tanh(z) = 1 - 2 / (exp(2z) + 1), saturating cleanly for large |z|.</summary>
    private static Vector512<float> Tanh(Vector512<float> z)
    {
        var e = Vector512.Exp(Vector512.Min(z * Vector512.Create(2f), Vector512.Create(80f)));
        return Vector512<float>.One - Vector512.Create(2f) / (e + Vector512<float>.One);
    }
}

/// <summary>Plain scalar GELU (double math) the fast one is tested against.</summary>
public static class ReferenceGelu
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))));
        }
    }

    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        double beta = Math.Sqrt(2 / Math.PI);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double t = Math.Tanh(beta * (v + 0.044715 * v * v * v));
            dx[i] = (float)(dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * beta * (1 + 3 * 0.044715 * v * v)));
        }
    }
}
