using MediatorDiT.Tensors;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// The VAE posterior (diffusers' DiagonalGaussianDistribution), all (B, latent, h, w): the first half of
/// the moments is the mean, the second the log-variance clamped to [-30, 20]; std = exp(logvar / 2).
/// </summary>
public sealed class DiagonalGaussian
{
    /// <summary>The range the log-variance is clamped to, as diffusers clamps it.</summary>
    public const float MinLogVar = -30f, MaxLogVar = 20f;

    /// <summary>The posterior mean (B, latent, h, w).</summary>
    public Tensor Mean { get; }
    /// <summary>The log-variance (B, latent, h, w), clamped to [<see cref="MinLogVar"/>, <see cref="MaxLogVar"/>].</summary>
    public Tensor LogVar { get; }
    /// <summary>The standard deviation exp(logvar / 2) (B, latent, h, w).</summary>
    public Tensor Std { get; }

    /// <summary>Wraps the three tensors (not copied); throws an <see cref="ArgumentException"/> when their shapes differ.</summary>
    public DiagonalGaussian(Tensor mean, Tensor logVar, Tensor std)
    {
        if (!mean.SameShape(logVar) || !mean.SameShape(std))
            throw new ArgumentException($"posterior shapes differ: mean [{mean.ShapeString}], logvar [{logVar.ShapeString}], std [{std.ShapeString}].");
        Mean = mean;
        LogVar = logVar;
        Std = std;
    }

    /// <summary>
    /// Fills mean, clamped logvar and std of one image from its moments (2 * latent, h, w); the image's
    /// part of each output starts at <paramref name="offset"/>.
    /// </summary>
    internal static void FromMoments(ReadOnlySpan<float> moments, Span<float> mean, Span<float> logVar, Span<float> std, int offset, int perImage)
    {
        moments[..perImage].CopyTo(mean.Slice(offset, perImage));
        for (int i = 0; i < perImage; i++)
        {
            float lv = Math.Clamp(moments[perImage + i], MinLogVar, MaxLogVar);
            logVar[offset + i] = lv;
            std[offset + i] = MathF.Exp(0.5f * lv);
        }
    }

    /// <summary>The mode (the mean itself, not a copy).</summary>
    public Tensor Mode() => Mean;

    /// <summary>mean + std * eps for a given standard normal eps of the same shape.</summary>
    public Tensor Sample(Tensor eps)
    {
        if (!eps.SameShape(Mean))
            throw new MediatorDiTException($"the noise for the VAE posterior has shape [{eps.ShapeString}] but the posterior has [{Mean.ShapeString}].");
        var z = new Tensor(Mean.Shape);
        var m = Mean.Span;
        var s = Std.Span;
        var e = eps.Span;
        var o = z.Span;
        for (int i = 0; i < o.Length; i++) o[i] = m[i] + s[i] * e[i];
        return z;
    }

    /// <summary>mean + std * eps with eps drawn from <paramref name="rng"/>.</summary>
    public Tensor Sample(RandomSource rng)
    {
        var eps = new Tensor(Mean.Shape);
        rng.FillGaussian(eps.Span);
        return Sample(eps);
    }
}
