using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// The VAE as DiT uses it around the diffusion model. The latent scale is the caller's business in
/// diffusers (AutoencoderKL returns unscaled latents); DiT multiplies encoded latents by 0.18215 before
/// training (<c>vae.encode(x).latent_dist.sample().mul_(0.18215)</c>) and divides sampled latents by it
/// before decoding (<c>vae.decode(z / 0.18215)</c>). These helpers apply exactly that.
/// </summary>
public sealed class VaePipeline
{
    /// <summary>The Stable Diffusion VAE's latent scale (its config's scaling_factor), DiT's constant.</summary>
    public const float StableDiffusionScale = 0.18215f;

    /// <summary>The autoencoder, which works on unscaled latents.</summary>
    public AutoencoderKl Vae { get; }
    /// <summary>The factor encoded latents are multiplied by and sampled latents divided by (positive, finite).</summary>
    public float LatentScale { get; }

    /// <summary>
    /// Where encoding and decoding run when not on the CPU: a device twin of <see cref="Vae"/> (MediatorDiT.Cuda's
    /// <c>DeviceVae</c>), or null. The latent scale is applied on the host either way.
    /// </summary>
    public IVaeDevice? Device { get; }

    /// <summary>The scale defaults to the config's scaling_factor (0.18215 unless the config says otherwise).</summary>
    public VaePipeline(AutoencoderKl vae, float? latentScale = null)
    {
        float scale = latentScale ?? (float)vae.Config.ScalingFactor;
        if (!(scale > 0) || !float.IsFinite(scale))
            throw new MediatorDiTException($"the VAE latent scale must be a positive number, got {scale}.");
        Vae = vae;
        LatentScale = scale;
    }

    private VaePipeline(VaePipeline host, IVaeDevice device) => (Vae, LatentScale, Device) = (host.Vae, host.LatentScale, device);

    /// <summary>This pipeline with its encoding and decoding on <paramref name="device"/> (same autoencoder and scale).</summary>
    public VaePipeline OnDevice(IVaeDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return new VaePipeline(this, device);
    }

    /// <summary>Loads the VAE with <see cref="VaeFiles.Load"/>.</summary>
    public static VaePipeline Load(string weightsPath, string? configPath = null) => new(VaeFiles.Load(weightsPath, configPath));

    /// <summary>
    /// images (B, 3, H, W) in [-1, 1] -> latents (B, 4, H/8, W/8) times the scale: a posterior sample
    /// drawn from <paramref name="rng"/> (as DiT's training does), or the posterior mean when rng is null.
    /// </summary>
    public Tensor EncodeToLatents(Tensor images, RandomSource? rng = null, CancellationToken cancellationToken = default)
    {
        var posterior = Device?.Encode(images, cancellationToken) ?? Vae.Encode(images, cancellationToken);
        var latents = rng is null ? posterior.Mean : posterior.Sample(rng);
        TensorPrimitives.Multiply(latents.Span, LatentScale, latents.Span);
        return latents;
    }

    /// <summary>Scaled latents (B, 4, h, w) -> images (B, 3, 8h, 8w), roughly in [-1, 1] (not clamped). The input is not modified.</summary>
    public Tensor DecodeLatents(Tensor latents, CancellationToken cancellationToken = default)
    {
        var unscaled = new Tensor(latents.Shape);
        TensorPrimitives.Divide(latents.Span, LatentScale, unscaled.Span);
        return Device?.Decode(unscaled, cancellationToken) ?? Vae.Decode(unscaled, cancellationToken);
    }
}
