using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// An attention module that can give its query-to-key maps for analysis (not used in the forward pass).
/// </summary>
internal interface IAttentionMaps
{
    /// <summary>
    /// The per-head (N, N) maps, (heads, N, N), that the module computes for one image's attention input
    /// <paramref name="input"/> (N, D): row i is the distribution over keys that query i reads from.
    /// </summary>
    Tensor ComputeAttentionProbabilities(Tensor input);
}
