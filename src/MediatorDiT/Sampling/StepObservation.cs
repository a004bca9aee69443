using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// The sampler's states around step <paramref name="Step"/> (0-based): <paramref name="Previous"/> before
/// it (the initial noise for step 0) and <paramref name="Current"/> after it, both (rows, C, H, W) in the
/// layout <paramref name="Layout"/>. The tensors are only valid during the call.
/// </summary>
public sealed record StepObservation(int Step, Tensor Previous, Tensor Current, BatchLayout Layout);
