namespace MediatorDiT.Sampling;

/// <summary>
/// How the SDE sampler leaves its grid's end t1 = 1 - last_step_size for the data (SiT's last_step).
/// </summary>
public enum LastStep
{
    /// <summary>No last step: the state at t1 is the sample (and the grid runs to 1 - eps).</summary>
    None,

    /// <summary>x + (drift + w score) * last_step_size: a noise-free Euler-Maruyama step (SiT's default).</summary>
    Mean,

    /// <summary>Tweedie's formula x / alpha + sigma^2 / alpha * score.</summary>
    Tweedie,

    /// <summary>x + drift * last_step_size with the probability-flow drift.</summary>
    Euler,
}
