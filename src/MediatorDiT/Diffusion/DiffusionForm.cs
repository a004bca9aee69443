namespace MediatorDiT.Diffusion;

/// <summary>
/// The SDE diffusion coefficient w_t as a function of time (SiT's diffusion_form); the sampler's noise is
/// scaled by sqrt(2 w_t) and the drift gains w_t times the score. <c>norm</c> below is diffusion_norm.
/// </summary>
public enum DiffusionForm
{
    /// <summary>w_t = norm.</summary>
    Constant,

    /// <summary>w_t = norm * drift_var: the diffusion of score-based diffusion models (SiT's default).</summary>
    SBDM,

    /// <summary>w_t = norm * sigma_t.</summary>
    Sigma,

    /// <summary>w_t = norm * (1 - t).</summary>
    Linear,

    /// <summary>w_t = 0.25 (norm cos(pi t) + 1)^2.</summary>
    Decreasing,

    /// <summary>w_t = norm sin(pi t)^2 (spelt "inccreasing-decreasing" in SiT's code).</summary>
    IncreasingDecreasing,
}
