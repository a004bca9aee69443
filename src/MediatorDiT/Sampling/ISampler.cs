using MediatorDiT.Diffusion;
using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// A sampler: turns initial noise z (B, C, H, W) and labels y (B) into samples with the models of a
/// <see cref="ModelLadder"/>, asking an <see cref="IModelSchedule"/> which model serves each sample at each
/// step. SiT's SDE (<see cref="SdeSampler"/>) and ODE (<see cref="OdeSampler"/>) samplers and DiT's Gaussian
/// diffusion (<see cref="DiffusionSampler"/>) share this one shape, so callers never branch on the kind.
/// </summary>
public interface ISampler
{
    /// <summary>Network-evaluating steps of one run (a schedule decides between them).</summary>
    int StepCount { get; }

    /// <summary>Noise draws one run takes from its <see cref="INoiseSource"/> (0 for deterministic samplers).</summary>
    int DrawCount { get; }

    /// <summary>What the run record calls this sampler, e.g. "sde euler 50", "ode dopri5 50", "ddim50 eta 0".</summary>
    string Description { get; }

    /// <summary>
    /// Samples from z with labels y; <paramref name="noise"/> supplies the per-step draws (ignored by the ODE).
    /// A ladder of several models needs a <paramref name="schedule"/>. Everything is validated before the first
    /// network call. The trajectory, when recorded, holds the state after each step in the sampler's layout.
    /// </summary>
    SamplingResult Sample(ModelLadder ladder, Tensor z, ReadOnlySpan<int> y, INoiseSource noise, IModelSchedule? schedule = null,
        bool recordTrajectory = false, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default);
}
