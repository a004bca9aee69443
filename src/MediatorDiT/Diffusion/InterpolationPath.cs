namespace MediatorDiT.Diffusion;

/// <summary>
/// The coefficients of one SiT interpolant x_t = alpha_t x1 + sigma_t x0 as scalar functions of t
/// (x0 noise, x1 data, t = 1 is data). Every quantity the transport needs per sample is one of these
/// scalars times x. They are evaluated in float32 in the official operation order, as SiT computes them
/// on float32 time tensors: near t = 1 the VP sigma_t = sqrt(1 - alpha_t^2) cancels, and the reference
/// results carry exactly that rounding. Infinities at the ends (d_alpha / alpha at t = 0) are returned
/// as such.
/// </summary>
public abstract class InterpolationPath
{
    /// <summary>Which of the three paths this is.</summary>
    public abstract PathType Type { get; }

    /// <summary>alpha_t and its time derivative.</summary>
    /// <param name="t">Time in [0, 1]; 1 is data.</param>
    public abstract (float Alpha, float DAlpha) AlphaAt(float t);

    /// <summary>sigma_t and its time derivative.</summary>
    /// <param name="t">Time in [0, 1]; 1 is data.</param>
    public abstract (float Sigma, float DSigma) SigmaAt(float t);

    /// <summary>d_alpha_t / alpha_t (infinite at t = 0 for linear and GVP).</summary>
    /// <param name="t">Time in [0, 1]; 1 is data.</param>
    public abstract float AlphaRatioAt(float t);

    /// <summary>
    /// SiT's compute_drift as two scalars: it returns (MeanScale * x, Variance), and the probability-flow
    /// drift is -MeanScale x + Variance * score. For the "ICPlan" paths (linear, GVP):
    /// MeanScale = -alpha_ratio, Variance = alpha_ratio sigma^2 - sigma d_sigma.
    /// </summary>
    public virtual (float MeanScale, float Variance) DriftAt(float t)
    {
        float ratio = AlphaRatioAt(t);
        var (sigma, dSigma) = SigmaAt(t);
        return (-ratio, ratio * (sigma * sigma) - sigma * dSigma);
    }

    /// <summary>The SDE diffusion coefficient w_t of the given form with diffusion_norm <paramref name="norm"/>.</summary>
    public float DiffusionAt(float t, DiffusionForm form, double norm = 1.0)
    {
        float n = (float)norm;
        return form switch
        {
            DiffusionForm.Constant => n,
            DiffusionForm.SBDM => n * DriftAt(t).Variance,
            DiffusionForm.Sigma => n * SigmaAt(t).Sigma,
            DiffusionForm.Linear => n * (1 - t),
            DiffusionForm.Decreasing => 0.25f * Square(n * MathF.Cos(MathF.PI * t) + 1),
            DiffusionForm.IncreasingDecreasing => n * Square(MathF.Sin(MathF.PI * t)),
            _ => throw new MediatorDiTException($"diffusion form {(int)form} is not one of {string.Join(", ", Enum.GetNames<DiffusionForm>())}."),
        };
    }

    /// <summary>
    /// get_score_from_velocity as score = (A v - x) / V with A = alpha / d_alpha and
    /// V = sigma^2 - A d_sigma sigma.
    /// </summary>
    public (float VelocityScale, float Divisor) ScoreFromVelocityAt(float t)
    {
        var (alpha, dAlpha) = AlphaAt(t);
        var (sigma, dSigma) = SigmaAt(t);
        float reverseRatio = alpha / dAlpha;
        return (reverseRatio, sigma * sigma - reverseRatio * dSigma * sigma);
    }

    /// <summary>get_noise_from_velocity as noise = (A v - x) / V with V = A d_sigma - sigma.</summary>
    public (float VelocityScale, float Divisor) NoiseFromVelocityAt(float t)
    {
        var (alpha, dAlpha) = AlphaAt(t);
        var (sigma, dSigma) = SigmaAt(t);
        float reverseRatio = alpha / dAlpha;
        return (reverseRatio, reverseRatio * dSigma - sigma);
    }

    /// <summary>The path of the given type.</summary>
    /// <param name="type">Linear, GVP or VP.</param>
    /// <exception cref="MediatorDiTException"><paramref name="type"/> is not a defined value.</exception>
    public static InterpolationPath Create(PathType type) => type switch
    {
        PathType.Linear => new LinearPath(),
        PathType.GVP => new GvpPath(),
        PathType.VP => new VpPath(),
        _ => throw new MediatorDiTException($"path type {(int)type} is not one of Linear, GVP, VP."),
    };

    private static float Square(float v) => v * v;
}
