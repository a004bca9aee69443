using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// The tensors the last Forward saved for Backward, and the core gradient Backward left, read-only views for a device
/// backward that starts from the same activations (and for the tests that hold it equal to this layer's).
/// </summary>
internal sealed partial class FullAttention
{
    /// <summary>qkv (B*N, 3D): columns [q | k | v], head h's channels at h * hd within each.</summary>
    internal Tensor SavedQkv => _qkv;

    /// <summary>The per-head outputs before the projection, (B*N, D).</summary>
    internal Tensor SavedHeadOutputs => _headsOut;

    /// <summary>Each query row's log-sum-exp of its scaled logits, (B, H, N).</summary>
    internal Tensor SavedLogSumExp => _lse;

    /// <summary>After Backward: dL/d(per-head outputs), (B*N, D), the projection's input gradient.</summary>
    internal Tensor HeadOutputGradient => _dHeads;

    /// <summary>After Backward: dL/dqkv, (B*N, 3D).</summary>
    internal Tensor QkvGradient => _dqkv;
}
