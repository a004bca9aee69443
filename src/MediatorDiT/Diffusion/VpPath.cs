namespace MediatorDiT.Diffusion;

/// <summary>
/// The variance-preserving interpolant of the VP SDE with beta(s) linear from <see cref="BetaMin"/> to
/// <see cref="BetaMax"/>, in SiT's time (t = 1 is data): log alpha_t = -1/4 (1 - t)^2 (bmax - bmin)
/// - 1/2 (1 - t) bmin, sigma_t = sqrt(1 - alpha_t^2).
/// </summary>
public sealed class VpPath : InterpolationPath
{
    /// <summary>beta at t = 1, the data end (beta_t = BetaMin + (1 - t) (BetaMax - BetaMin)).</summary>
    public const double BetaMin = 0.1;
    /// <summary>beta at t = 0, the noise end.</summary>
    public const double BetaMax = 20.0;

    private const float Range = (float)(BetaMax - BetaMin);
    private const float Min = (float)BetaMin;
    private const float HalfMin = (float)(0.5 * BetaMin);

    /// <inheritdoc/>
    public override PathType Type => PathType.VP;

    private static float LogMeanCoefficient(float t) => -0.25f * ((1 - t) * (1 - t)) * Range - 0.5f * (1 - t) * Min;

    private static float LogMeanCoefficientDerivative(float t) => 0.5f * (1 - t) * Range + HalfMin;

    /// <inheritdoc/>
    public override (float Alpha, float DAlpha) AlphaAt(float t)
    {
        float alpha = MathF.Exp(LogMeanCoefficient(t));
        return (alpha, alpha * LogMeanCoefficientDerivative(t));
    }

    /// <inheritdoc/>
    public override (float Sigma, float DSigma) SigmaAt(float t)
    {
        float alphaSquared = MathF.Exp(2 * LogMeanCoefficient(t));
        float sigma = MathF.Sqrt(1 - alphaSquared);
        return (sigma, alphaSquared * (2 * LogMeanCoefficientDerivative(t)) / (-2 * sigma));
    }

    /// <inheritdoc/>
    public override float AlphaRatioAt(float t) => LogMeanCoefficientDerivative(t);

    /// <summary>The VP drift uses beta_t directly: MeanScale = -beta_t / 2, Variance = beta_t / 2.</summary>
    public override (float MeanScale, float Variance) DriftAt(float t)
    {
        float beta = Min + (1 - t) * Range;
        return (-0.5f * beta, beta / 2);
    }
}
