using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// Attention maps for analysis, from the module's own weights and position biases: the two softmaxes the
/// network computes, A1 = softmax(s T k^T + bias1) (n, N) and A2 = softmax(s q T^T + bias2) (N, n), and
/// their composition A2 A1 (N, N): how much query i reads from key j through the mediators.
/// </summary>
internal sealed partial class MediatorAttention : IAttentionMaps
{
    private readonly object _mapsGate = new();

    /// <summary>A1 (heads, n, N) and A2 (heads, N, n) for one image's attention input (N, D).</summary>
    public (Tensor MediatorsToKeys, Tensor QueriesToMediators) ComputeMediatorAttention(Tensor input)
    {
        int d = _dim, hd = _headDim, n = _mediators, G = _grid, N = G * G;
        if (input.Length != N * d)
            throw new MediatorDiTException($"mediator attention built for a {G}x{G} token grid got {input.Length / d} tokens (one image expected).");
        // Callers may ask for several images at once from different threads: one of them builds the cached
        // biases, the others wait and then only read them.
        lock (_mapsGate) BuildBiases();
        var qkv = new float[N * 3 * d];
        Linear.Forward(input.Span, QkvWeight.Value.Span, QkvBias.Value.Span, qkv, N, d, 3 * d);
        var tokens = new float[n * d];
        AdaptiveAvgPool.Forward(qkv, 3 * d, tokens, G, G, d, _medGrid, _medGrid);
        var a1 = new Tensor(_heads, n, N);
        var a2 = new Tensor(_heads, N, n);
        for (int h = 0; h < _heads; h++)
        {
            var s1 = a1.Span.Slice(h * n * N, n * N);
            _bias1.Span.Slice(h * n * N, n * N).CopyTo(s1);
            Gemm.Sgemm(false, true, n, N, hd, _scale, tokens.AsSpan(h * hd), d, qkv.AsSpan(d + h * hd), 3 * d, 1f, s1, N);
            Softmax.Forward(s1, s1, n, N);
            var s2 = a2.Span.Slice(h * N * n, N * n);
            _bias2.Span.Slice(h * N * n, N * n).CopyTo(s2);
            Gemm.Sgemm(false, true, N, n, hd, _scale, qkv.AsSpan(h * hd), 3 * d, tokens.AsSpan(h * hd), d, 1f, s2, n);
            Softmax.Forward(s2, s2, N, n);
        }
        return (a1, a2);
    }

    public Tensor ComputeAttentionProbabilities(Tensor input)
    {
        int n = _mediators, N = _grid * _grid;
        var (a1, a2) = ComputeMediatorAttention(input);
        var maps = new Tensor(_heads, N, N);
        for (int h = 0; h < _heads; h++)
            Gemm.Sgemm(false, false, N, N, n, 1f, a2.Span.Slice(h * N * n, N * n), n, a1.Span.Slice(h * n * N, n * N), N, 0f,
                maps.Span.Slice(h * N * N, N * N), N);
        return maps;
    }
}
