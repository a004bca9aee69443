using MediatorDiT.Models;
using MediatorDiT.Models.Vae;

namespace MediatorDiT.Sampling;

/// <summary>
/// Builds the functions a sampler evaluates on a compute device other than the CPU: the device twin of
/// <see cref="NetworkFunction"/> and <see cref="GuidedNetworkFunction"/> for a loaded network. It is the seam through
/// which a device backend (MediatorDiT.Cuda's <c>DeviceModelFactory</c>) plugs into <see cref="ModelLadder.FromModels"/>
/// and the pipeline, so that this library needs no GPU compiler. The factory owns what it creates (the weights it
/// uploads, the device it opened) and frees it on <see cref="IDisposable.Dispose"/>; functions it returned must not be
/// used afterwards. Not thread-safe: one sampler at a time.
/// </summary>
public interface IDeviceModelFactory : IDisposable
{
    /// <summary>Where the functions run, in words (e.g. "cuda:0 (NVIDIA H100)"), for run logs.</summary>
    string DeviceName { get; }

    /// <summary>
    /// <paramref name="model"/> evaluated on the device: its plain forward, or with active <paramref name="guidance"/>
    /// (scale above 1) the official forward_with_cfg on the doubled batch, as <see cref="GuidedNetworkFunction"/>.
    /// Functions for the same model share its device weights.
    /// </summary>
    /// <exception cref="MediatorDiTException">Guidance asks for more channels than the model has.</exception>
    IModelFunction Create(SiTModel model, ClassifierFreeGuidance? guidance);

    /// <summary>
    /// <paramref name="vae"/> encoding and decoding on the device, owned by the factory (weights uploaded once per
    /// autoencoder), or null where the backend runs the VAE on the host (the default).
    /// </summary>
    IVaeDevice? CreateVae(AutoencoderKl vae) => null;
}
