using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// The self-attention inside a block, built by its kind's <see cref="AttentionSpec.Create"/>. Works on token rows (B*N, D).
/// Forward keeps what Backward needs; the caller must leave <c>input</c> unchanged until Backward.
/// </summary>
internal interface IAttention
{
    /// <summary>Parameters with their state-dict names (relative to the block, e.g. "attn.qkv.weight").</summary>
    IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>output (B*N, D) = attention(input (B*N, D)); both tensors already sized.</summary>
    void Forward(Tensor input, Tensor output, int batch);

    /// <summary>
    /// Given dL/d(output), accumulates parameter gradients and writes dL/d(input) into
    /// <paramref name="dInput"/> (overwritten).
    /// </summary>
    void Backward(Tensor dOutput, Tensor dInput);

    /// <summary>The last forward's query-to-key attention for (sample, head), (N, N), for analysis.</summary>
    void ComposedAttentionMap(int sample, int head, Span<float> map);

    /// <summary>The <see cref="AttentionSpec.Name"/> of the module's kind: "full" or "mediator".</summary>
    string Kind { get; }
}
