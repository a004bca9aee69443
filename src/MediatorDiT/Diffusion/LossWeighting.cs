namespace MediatorDiT.Diffusion;

/// <summary>
/// Per-sample weight of the score and noise losses (SiT's loss_weight). A velocity-predicting model
/// always uses the plain velocity MSE and ignores this.
/// </summary>
public enum LossWeighting
{
    /// <summary>Weight 1.</summary>
    None,

    /// <summary>(drift_var / sigma_t)^2: the score error measured as a velocity error.</summary>
    Velocity,

    /// <summary>drift_var / sigma_t^2: the likelihood (maximum-likelihood) weighting.</summary>
    Likelihood,
}
