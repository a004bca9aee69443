namespace MediatorDiT.Diffusion;

/// <summary>The generalised variance-preserving interpolant alpha_t = sin(pi t / 2), sigma_t = cos(pi t / 2).</summary>
public sealed class GvpPath : InterpolationPath
{
    private const float HalfPi = (float)(Math.PI / 2);

    /// <inheritdoc/>
    public override PathType Type => PathType.GVP;

    private static float Angle(float t) => t * MathF.PI / 2;

    /// <inheritdoc/>
    public override (float Alpha, float DAlpha) AlphaAt(float t) =>
        (MathF.Sin(Angle(t)), HalfPi * MathF.Cos(Angle(t)));

    /// <inheritdoc/>
    public override (float Sigma, float DSigma) SigmaAt(float t) =>
        (MathF.Cos(Angle(t)), -HalfPi * MathF.Sin(Angle(t)));

    /// <inheritdoc/>
    public override float AlphaRatioAt(float t) => MathF.PI / (2 * MathF.Tan(Angle(t)));
}
