namespace MediatorDiT.Sampling;

/// <summary>The SDE integrator.</summary>
public enum SdeMethod
{
    /// <summary>Euler-Maruyama: one network evaluation per step.</summary>
    Euler,

    /// <summary>Stochastic Heun (noise first, then a trapezoidal drift step): two evaluations per step.</summary>
    Heun,
}
