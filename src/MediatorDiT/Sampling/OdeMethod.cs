namespace MediatorDiT.Sampling;

/// <summary>The ODE integrator of the probability-flow ODE.</summary>
public enum OdeMethod
{
    /// <summary>Explicit Euler on the time grid: one evaluation per step.</summary>
    Euler,

    /// <summary>Heun's method (explicit trapezoid) on the time grid: two evaluations per step.</summary>
    Heun,

    /// <summary>Adaptive Dormand-Prince 5(4) with absolute and relative tolerances.</summary>
    Dopri5,
}
