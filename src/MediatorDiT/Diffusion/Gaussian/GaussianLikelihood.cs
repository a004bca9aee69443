namespace MediatorDiT.Diffusion;

/// <summary>
/// The per-element terms of DiT's variational bound (diffusion_utils.py), in float32 and in the
/// official order of operations: the KL divergence between two Gaussians and the log-likelihood of a
/// Gaussian discretised to 8-bit bins (width 2/255 on [-1, 1], open-ended at the extremes) under
/// the tanh approximation of the standard normal CDF. Each comes with its derivative with respect to
/// the second (model) distribution's log variance or log scale, which the training loss needs.
/// </summary>
internal static class GaussianLikelihood
{
    private const float CdfFloor = 1e-12f;
    private const float HalfBin = (float)(1.0 / 255.0);
    private static readonly float SqrtTwoOverPi = (float)Math.Sqrt(2.0 / Math.PI);

    /// <summary>KL(N(mean1, e^logVar1) || N(mean2, e^logVar2)) in nats.</summary>
    public static float NormalKl(float mean1, float logVar1, float mean2, float logVar2)
    {
        float d = mean1 - mean2;
        return 0.5f * (-1f + logVar2 - logVar1 + MathF.Exp(logVar1 - logVar2) + d * d * MathF.Exp(-logVar2));
    }

    /// <summary>d NormalKl / d logVar2.</summary>
    public static float NormalKlGradLogVar2(float mean1, float logVar1, float mean2, float logVar2)
    {
        float d = mean1 - mean2;
        return 0.5f * (1f - MathF.Exp(logVar1 - logVar2) - d * d * MathF.Exp(-logVar2));
    }

    /// <summary>0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).</summary>
    public static float ApproxStandardNormalCdf(float x) =>
        0.5f * (1f + TorchTanh(SqrtTwoOverPi * (x + 0.044715f * (x * x * x))));

    /// <summary>
    /// Beyond this |u|, PyTorch's vectorised float32 tanh (SLEEF's tanhf_u10) returns exactly +-1, where
    /// the correctly rounded value is still 1 - 2^-24 up to |u| of about 9.01.
    /// </summary>
    public const float TanhSaturation = 8.664339742f;

    /// <summary>float32 tanh as PyTorch computes it on the CPU: saturated beyond <see cref="TanhSaturation"/>.</summary>
    public static float TorchTanh(float u) => MathF.Abs(u) > TanhSaturation ? MathF.CopySign(1f, u) : MathF.Tanh(u);

    /// <summary>d ApproxStandardNormalCdf / dx.</summary>
    public static float ApproxStandardNormalPdf(float x)
    {
        float th = TorchTanh(SqrtTwoOverPi * (x + 0.044715f * (x * x * x)));
        return 0.5f * (1f - th * th) * SqrtTwoOverPi * (1f + 3f * 0.044715f * x * x);
    }

    /// <summary>
    /// log P(bin of x) under N(mean, e^(2 logScale)), x in [-1, 1]: the CDF below the bin's upper edge
    /// for x &lt; -0.999, the mass above its lower edge for x &gt; 0.999, otherwise the bin's mass;
    /// probabilities floored at 1e-12.
    /// </summary>
    public static float DiscretizedLogLikelihood(float x, float mean, float logScale)
    {
        float centered = x - mean;
        float invStd = MathF.Exp(-logScale);
        float plusIn = invStd * (centered + HalfBin);
        float cdfPlus = ApproxStandardNormalCdf(plusIn);
        float minIn = invStd * (centered - HalfBin);
        float cdfMin = ApproxStandardNormalCdf(minIn);
        if (x < -0.999f) return MathF.Log(MathF.Max(cdfPlus, CdfFloor));
        if (x > 0.999f) return MathF.Log(MathF.Max(1f - cdfMin, CdfFloor));
        return MathF.Log(MathF.Max(cdfPlus - cdfMin, CdfFloor));
    }

    /// <summary>d DiscretizedLogLikelihood / d logScale (zero where the floor is active).</summary>
    public static float DiscretizedLogLikelihoodGradLogScale(float x, float mean, float logScale)
    {
        float centered = x - mean;
        float invStd = MathF.Exp(-logScale);
        float plusIn = invStd * (centered + HalfBin), minIn = invStd * (centered - HalfBin);
        float cdfPlus = ApproxStandardNormalCdf(plusIn), cdfMin = ApproxStandardNormalCdf(minIn);
        // d(in)/d(logScale) = -in.
        float dPlus = -ApproxStandardNormalPdf(plusIn) * plusIn, dMin = -ApproxStandardNormalPdf(minIn) * minIn;
        if (x < -0.999f) return cdfPlus > CdfFloor ? dPlus / cdfPlus : 0f;
        if (x > 0.999f) return 1f - cdfMin > CdfFloor ? -dMin / (1f - cdfMin) : 0f;
        float delta = cdfPlus - cdfMin;
        return delta > CdfFloor ? (dPlus - dMin) / delta : 0f;
    }
}
