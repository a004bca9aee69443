namespace MediatorDiT.Diffusion;

/// <summary>The linear interpolant alpha_t = t, sigma_t = 1 - t (SiT's "ICPlan", rectified-flow style).</summary>
public sealed class LinearPath : InterpolationPath
{
    /// <inheritdoc/>
    public override PathType Type => PathType.Linear;

    /// <inheritdoc/>
    public override (float Alpha, float DAlpha) AlphaAt(float t) => (t, 1);

    /// <inheritdoc/>
    public override (float Sigma, float DSigma) SigmaAt(float t) => (1 - t, -1);

    /// <inheritdoc/>
    public override float AlphaRatioAt(float t) => 1 / t;
}
