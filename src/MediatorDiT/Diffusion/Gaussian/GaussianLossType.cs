namespace MediatorDiT.Diffusion;

/// <summary>The training loss (create_diffusion picks MSE unless rescale_learned_sigmas).</summary>
public enum GaussianLossType
{
    /// <summary>MSE on the mean prediction, plus the variational bound term for learned variances.</summary>
    Mse,
    /// <summary>As <see cref="Mse"/>, with the variational bound term scaled by T / 1000.</summary>
    RescaledMse,
}
