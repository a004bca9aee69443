using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>Attention maps for analysis: softmax(q k^T * hd^-0.5) per head, from the module's own weights.</summary>
internal sealed partial class FullAttention : IAttentionMaps
{
    public Tensor ComputeAttentionProbabilities(Tensor input)
    {
        int d = _dim, hd = _headDim, n = input.Length / d;
        if (n * d != input.Length) throw new MediatorDiTException($"attention input of {input.Length} values is not (N, {d}).");
        var qkv = new float[n * 3 * d];
        Linear.Forward(input.Span, QkvWeight.Value.Span, QkvBias.Value.Span, qkv, n, d, 3 * d);
        var maps = new Tensor(_heads, n, n);
        for (int h = 0; h < _heads; h++)
        {
            var map = maps.Span.Slice(h * n * n, n * n);
            Gemm.Sgemm(false, true, n, n, hd, _scale, qkv.AsSpan(h * hd), 3 * d, qkv.AsSpan(d + h * hd), 3 * d, 0f, map, n);
            Softmax.Forward(map, map, n, n);
        }
        return maps;
    }
}
