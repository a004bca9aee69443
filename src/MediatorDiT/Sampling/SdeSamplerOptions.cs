using MediatorDiT.Diffusion;

namespace MediatorDiT.Sampling;

/// <summary>
/// SiT's sample_sde settings; the defaults are those of SiT's sampling scripts (diffusion form "sigma":
/// sample_sde's own default, SBDM, is infinite at t0 = 0, where velocity models on the linear and GVP
/// paths start unless sample_eps is set).
/// </summary>
public sealed record SdeSamplerOptions
{
    /// <summary>The integrator: Euler-Maruyama or stochastic Heun.</summary>
    public SdeMethod Method { get; init; } = SdeMethod.Euler;
    /// <summary>The form of the diffusion coefficient w_t.</summary>
    public DiffusionForm DiffusionForm { get; init; } = DiffusionForm.Sigma;
    /// <summary>SiT's diffusion_norm, the scale of w_t.</summary>
    public double DiffusionNorm { get; init; } = 1.0;
    /// <summary>The final step from the grid's end to the data.</summary>
    public LastStep LastStep { get; init; } = LastStep.Mean;

    /// <summary>Size of the last step; the grid ends at 1 - LastStepSize (ignored for <see cref="LastStep.None"/>).</summary>
    public double LastStepSize { get; init; } = 0.04;

    /// <summary>Time points of the grid, the last step included: NumSteps - 1 grid steps, then the last step.</summary>
    public int NumSteps { get; init; } = 250;

    /// <summary>Throws a <see cref="MediatorDiTException"/> naming the first bad setting.</summary>
    public SdeSamplerOptions Validate()
    {
        if (!Enum.IsDefined(Method)) throw new MediatorDiTException($"SDE method {(int)Method} is not one of Euler, Heun.");
        if (!Enum.IsDefined(LastStep)) throw new MediatorDiTException($"last step {(int)LastStep} is not one of None, Mean, Tweedie, Euler.");
        Transport.CheckDiffusion(DiffusionForm, DiffusionNorm);
        if (NumSteps < 2) throw new MediatorDiTException($"an SDE sampler needs at least 2 time points (num_steps >= 2), got {NumSteps}.");
        if (NumSteps > TimeGrid.MaxPoints)
            throw new MediatorDiTException($"an SDE sampler takes at most {TimeGrid.MaxPoints} time points (num_steps), got {NumSteps}.");
        if (LastStep != LastStep.None && !(LastStepSize >= 0 && LastStepSize < 1))
            throw new MediatorDiTException($"last step size must be in [0, 1), got {LastStepSize}.");
        return this;
    }
}
