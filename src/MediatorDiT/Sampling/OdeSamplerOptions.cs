namespace MediatorDiT.Sampling;

/// <summary>SiT's sample_ode settings; the defaults are SiT's.</summary>
public sealed record OdeSamplerOptions
{
    /// <summary>The integrator.</summary>
    public OdeMethod Method { get; init; } = OdeMethod.Dopri5;

    /// <summary>
    /// Time points of the grid. Euler and Heun take NumSteps - 1 steps on it; for Dopri5 the grid points
    /// are where states are reported and where a model schedule decides (steps are cut to land on them).
    /// </summary>
    public int NumSteps { get; init; } = 50;

    /// <summary>Absolute error tolerance (Dopri5).</summary>
    public double Atol { get; init; } = 1e-6;

    /// <summary>Relative error tolerance (Dopri5).</summary>
    public double Rtol { get; init; } = 1e-3;

    /// <summary>Dopri5 gives up with an error after this many function evaluations.</summary>
    public int MaxEvaluations { get; init; } = 100_000;

    /// <summary>Throws a <see cref="MediatorDiTException"/> naming the first bad setting.</summary>
    public OdeSamplerOptions Validate()
    {
        if (!Enum.IsDefined(Method)) throw new MediatorDiTException($"ODE method {(int)Method} is not one of Euler, Heun, Dopri5.");
        if (NumSteps < 2) throw new MediatorDiTException($"an ODE sampler needs at least 2 time points (num_steps >= 2), got {NumSteps}.");
        if (NumSteps > TimeGrid.MaxPoints)
            throw new MediatorDiTException($"an ODE sampler takes at most {TimeGrid.MaxPoints} time points (num_steps), got {NumSteps}.");
        if (!(Atol > 0) || double.IsInfinity(Atol)) throw new MediatorDiTException($"atol must be a finite number > 0, got {Atol}.");
        if (!(Rtol > 0) || double.IsInfinity(Rtol)) throw new MediatorDiTException($"rtol must be a finite number > 0, got {Rtol}.");
        if (MaxEvaluations < 1) throw new MediatorDiTException($"the evaluation limit must be at least 1, got {MaxEvaluations}.");
        return this;
    }
}
