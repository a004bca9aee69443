namespace MediatorDiT.Diffusion;

/// <summary>
/// The interpolant between noise x0 (t = 0) and data x1 (t = 1), x_t = alpha_t x1 + sigma_t x0, as in SiT.
/// </summary>
public enum PathType
{
    /// <summary>alpha_t = t, sigma_t = 1 - t (SiT's default, "ICPlan").</summary>
    Linear,

    /// <summary>Generalised variance preserving: alpha_t = sin(pi t / 2), sigma_t = cos(pi t / 2).</summary>
    GVP,

    /// <summary>Variance preserving with a linear beta schedule from 0.1 to 20 (the SBDM VP SDE, time reversed).</summary>
    VP,
}
