using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// What a sampler returns: the samples (B, C, H, W); the state after every step when the run recorded it
/// (else empty), in the sampler's layout (under guidance (2B, C, H, W), conditional half first); and
/// which model served each sample at each step, with the FLOPs spent.
/// </summary>
public sealed record SamplingResult(Tensor Samples, IReadOnlyList<Tensor> Trajectory, ModelUsageLog Usage);
