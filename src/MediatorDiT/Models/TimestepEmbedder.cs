using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// Timestep embedding: 256 sinusoidal frequencies [cos(t f_k), sin(t f_k)], f_k = exp(-ln(10000) k / 128),
/// then Linear(256, D) -> SiLU -> Linear(D, D). t may be fractional (SiT) or integer-valued (DiT).
/// </summary>
internal sealed class TimestepEmbedder
{
    public const int FrequencySize = 256;
    private readonly int _d;
    public Parameter W0 { get; }
    public Parameter B0 { get; }
    public Parameter W2 { get; }
    public Parameter B2 { get; }
    private readonly Tensor _freq = new(0), _h = new(0), _a = new(0), _dA = new(0);
    private int _batch;

    public TimestepEmbedder(int dim)
    {
        _d = dim;
        W0 = new Parameter("t_embedder.mlp.0.weight", [dim, FrequencySize]);
        B0 = new Parameter("t_embedder.mlp.0.bias", [dim]);
        W2 = new Parameter("t_embedder.mlp.2.weight", [dim, dim]);
        B2 = new Parameter("t_embedder.mlp.2.bias", [dim]);
    }

    /// <summary>(B) -> (B, 256), in float32 as the official code computes it.</summary>
    public static void Frequencies(ReadOnlySpan<float> t, Span<float> dst)
    {
        const int half = FrequencySize / 2;
        for (int b = 0; b < t.Length; b++)
        for (int k = 0; k < half; k++)
        {
            float freq = MathF.Exp(-MathF.Log(10000f) * (k / (float)half));
            float arg = t[b] * freq;
            dst[b * FrequencySize + k] = MathF.Cos(arg);
            dst[b * FrequencySize + half + k] = MathF.Sin(arg);
        }
    }

    public void Forward(ReadOnlySpan<float> t, Tensor output)
    {
        int b = t.Length;
        _batch = b;
        _freq.EnsureShape(b, FrequencySize);
        _h.EnsureShape(b, _d);
        _a.EnsureShape(b, _d);
        Frequencies(t, _freq.Span);
        Linear.Forward(_freq.Span, W0.Value.Span, B0.Value.Span, _h.Span, b, FrequencySize, _d);
        Silu.Forward(_h.Span, _a.Span);
        Linear.Forward(_a.Span, W2.Value.Span, B2.Value.Span, output.Span, b, _d, _d);
    }

    /// <summary>Accumulates parameter gradients from dL/d(embedding) (B, D). Time itself gets no gradient.</summary>
    public void Backward(Tensor dOutput)
    {
        int b = _batch;
        _dA.EnsureShape(b, _d);
        Linear.Backward(_a.Span, W2.Value.Span, dOutput.Span, W2.Grad!.Span, B2.Grad!.Span, _dA.Span, b, _d, _d);
        Silu.Backward(_h.Span, _dA.Span, _dA.Span);
        Linear.Backward(_freq.Span, W0.Value.Span, _dA.Span, W0.Grad!.Span, B0.Grad!.Span, [], b, FrequencySize, _d);
    }
}
