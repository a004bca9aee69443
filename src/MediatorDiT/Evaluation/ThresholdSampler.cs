using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>The sampler a threshold search runs: SiT's SDE sampler (the authors' setting) or the ODE sampler.</summary>
public sealed class ThresholdSampler
{
    private readonly SdeSampler? _sde;
    private readonly OdeSampler? _ode;

    private ThresholdSampler(SdeSampler? sde, OdeSampler? ode)
    {
        _sde = sde;
        _ode = ode;
    }

    public static ThresholdSampler Sde(SdeSampler sampler)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        return new ThresholdSampler(sampler, null);
    }

    public static ThresholdSampler Ode(OdeSampler sampler)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        return new ThresholdSampler(null, sampler);
    }

    public SdeSampler? SdeSampler => _sde;
    public OdeSampler? OdeSampler => _ode;

    /// <summary>Noise draws one run makes (one per SDE grid step, none for the ODE).</summary>
    public int DrawsPerRun => _sde is null ? 0 : _sde.Options.NumSteps - 1;

    /// <summary>Network-evaluating steps of one run (the schedule's decision points lie between them).</summary>
    public int StepCount => _sde?.StepCount ?? _ode!.StepCount;

    /// <summary>One run from z (B, C, H, W), labels y and, for the SDE, recorded draws (draws, rows, C, H, W).</summary>
    public SamplingResult Run(ModelLadder ladder, Tensor z, int[] y, Tensor? draws, IModelSchedule schedule, CancellationToken cancellationToken)
    {
        if (_sde is not null)
        {
            var noise = new ReplayNoiseSource(draws ?? throw new ArgumentNullException(nameof(draws), "the SDE needs recorded draws."));
            return _sde.Sample(ladder, z, y, noise, schedule, cancellationToken: cancellationToken);
        }
        return _ode!.Sample(ladder, z, y, schedule, cancellationToken: cancellationToken);
    }
}
