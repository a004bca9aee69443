using MediatorDiT.Tensors;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// The VAE's encoding and decoding on a compute device other than the CPU: the device twin of
/// <see cref="AutoencoderKl.Encode"/> and <see cref="AutoencoderKl.Decode"/> for one loaded autoencoder, on unscaled
/// latents. It is the seam through which a device backend (MediatorDiT.Cuda's <c>DeviceVae</c>, made by its model
/// factory, <see cref="Sampling.IDeviceModelFactory.CreateVae"/>) plugs into <see cref="VaePipeline"/>, so that this
/// library needs no GPU compiler. Not thread-safe: one call at a time.
/// </summary>
public interface IVaeDevice
{
    /// <summary>Where it runs, in words.</summary>
    string DeviceName { get; }

    /// <summary>latents (B, latent, h, w) -> images (B, out, h f, w f), not clamped, as <see cref="AutoencoderKl.Decode"/>.</summary>
    /// <exception cref="MediatorDiTException">The latents have the wrong shape or are too large.</exception>
    Tensor Decode(Tensor latents, CancellationToken cancellationToken = default);

    /// <summary>images (B, in, H, W) -> the posterior (B, latent, H/f, W/f), as <see cref="AutoencoderKl.Encode"/>.</summary>
    /// <exception cref="MediatorDiTException">The images have the wrong shape or are too large.</exception>
    DiagonalGaussian Encode(Tensor images, CancellationToken cancellationToken = default);
}
