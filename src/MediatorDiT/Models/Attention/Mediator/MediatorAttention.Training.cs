using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// The tensors the last Forward saved for Backward, and the intermediate gradients Backward left, read-only views for
/// a device backward that starts from the same activations (and for the tests that hold it equal to this layer's).
/// </summary>
internal sealed partial class MediatorAttention
{
    /// <summary>qkv (B*N, 3D): columns [q | k | v], head h's channels at h * hd within each.</summary>
    internal Tensor SavedQkv => _qkv;

    /// <summary>The mediator tokens T, the pooled queries, (B, n, D).</summary>
    internal Tensor SavedTokens => _tokens;

    /// <summary>The mediators' attention over the tokens A1, (B, H, n, N).</summary>
    internal Tensor SavedA1 => _a1;

    /// <summary>The tokens' attention over the mediators A2, (B, H, N, n).</summary>
    internal Tensor SavedA2 => _a2;

    /// <summary>The mediators' values Vm = A1 v, (B, H, n, hd).</summary>
    internal Tensor SavedMediatorValues => _vm;

    /// <summary>The depthwise conv's taps as the core reads them, (9, D): tap t of channel c at t * D + c.</summary>
    internal Tensor SavedTaps => _taps;

    /// <summary>After Backward: dL/d(per-head outputs), (B*N, D), the projection's input gradient.</summary>
    internal Tensor HeadOutputGradient => _dO;

    /// <summary>After Backward: dL/dqkv, (B*N, 3D).</summary>
    internal Tensor QkvGradient => _dqkv;

    /// <summary>After Backward: dL/d(logits of A1), (B, H, n, N).</summary>
    internal Tensor KeyLogitGradient => _dS1;

    /// <summary>After Backward: dL/d(logits of A2), (B, H, N, n).</summary>
    internal Tensor QueryLogitGradient => _dS2;

    /// <summary>After Backward: each image's depthwise tap and bias gradients, (B, 10, D): tap t of channel c at t * D + c, the bias at 9 * D + c.</summary>
    internal Tensor DepthwiseGradientsPerImage => _dTaps;
}
