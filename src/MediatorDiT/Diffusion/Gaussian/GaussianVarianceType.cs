namespace MediatorDiT.Diffusion;

/// <summary>The reverse process's variance (DiT: learned range).</summary>
public enum GaussianVarianceType
{
    /// <summary>
    /// The second C output channels v in [-1, 1] interpolate the log variance between the clipped
    /// posterior variance (v = -1) and beta (v = 1): frac = (v + 1) / 2 (DiT's default with learn_sigma).
    /// </summary>
    LearnedRange,
    /// <summary>The second C output channels are the log variance itself.</summary>
    Learned,
    /// <summary>beta_t (the first step uses the posterior variance of step 1).</summary>
    FixedLarge,
    /// <summary>The posterior variance, clipped at the first step.</summary>
    FixedSmall,
}
