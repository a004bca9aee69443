using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// A model function that can show, for analysis, what each block's attention computes from: its input (B*N, D), the
/// adaLN-modulated LayerNorm of the block's tokens. The redundancy measurement
/// (<c>MediatorDiT.Evaluation.RedundancyAnalysis</c>) rebuilds the attention maps from it with the CPU model's own
/// attention weights. Device functions implement it (the CPU model is observed through its blocks); a call that nobody
/// observes computes exactly as before.
/// </summary>
public interface IAttentionInputSource
{
    /// <summary>
    /// From now until the returned handle is disposed, every call hands <paramref name="onInput"/>(layer, attention
    /// input (B*N, D) on the host, batch B) in each block, before that block's attention runs. The tensor is valid
    /// during the callback only. One observer at a time.
    /// </summary>
    /// <exception cref="InvalidOperationException">The function is already observed.</exception>
    IDisposable ObserveAttentionInputs(Action<int, Tensor, int> onInput);
}
