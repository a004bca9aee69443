using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Cuda.Vae;
using MediatorDiT.Devices;
using MediatorDiT.Models;
using MediatorDiT.Models.Vae;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Sampling;

/// <summary>
/// The <see cref="IDeviceModelFactory"/> of this backend: networks as <see cref="DeviceModelFunction"/>s on one ILGPU
/// accelerator, a CUDA device (<see cref="OpenCuda"/>, products by cuBLAS) or any other accelerator (the CPU
/// accelerator the tests use, products by the ILGPU SGEMM). Each network's weights are uploaded once, at its first
/// <see cref="Create"/>, and shared by every guidance setting and ladder built from it; the kernels are compiled once
/// per factory. Every network's matrix products run at the factory's <see cref="Precision"/>. A latent pipeline's VAE
/// decodes (and encodes) on the same device in fp32 (<see cref="CreateVae"/>). Disposing it frees every network and
/// VAE and, when it opened them, the accelerator and ILGPU context.
/// </summary>
public sealed class DeviceModelFactory : IDeviceModelFactory
{
    private readonly Dictionary<SiTModel, DeviceModelFunction> _networks = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<AutoencoderKl, DeviceVae> _vaes = new(ReferenceEqualityComparer.Instance);
    private readonly KernelSet _kernels;
    private readonly CudaDevice? _ownedDevice;
    private bool _disposed;

    /// <summary>Networks on <paramref name="accelerator"/>, which stays the caller's to dispose (after this factory).</summary>
    /// <param name="accelerator">The accelerator to run on.</param>
    /// <param name="deviceName">Where that is, in words; null: the accelerator's name.</param>
    /// <param name="precision">The matrix products' precision (fp32 unless asked; <see cref="OpenCuda"/> defaults to bf16).</param>
    /// <param name="fullAttention">How the full-attention networks' core runs (<see cref="FullAttentionCore"/>; mediator attention ignores it).</param>
    /// <exception cref="MediatorDiTException">The fused full-attention core was asked for and cannot run here.</exception>
    public DeviceModelFactory(Accelerator accelerator, string? deviceName = null, DevicePrecision precision = DevicePrecision.Fp32,
        FullAttentionCore fullAttention = FullAttentionCore.Tiles)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        fullAttention.Check(accelerator, precision);
        Accelerator = accelerator;
        DeviceName = deviceName ?? accelerator.Name;
        Precision = precision;
        FullAttention = fullAttention;
        _kernels = new KernelSet(accelerator);
    }

    private DeviceModelFactory(CudaDevice device, DevicePrecision precision, FullAttentionCore fullAttention)
        : this(device.Accelerator, device.Name, precision, fullAttention) => _ownedDevice = device;

    /// <summary>
    /// Opens CUDA device <paramref name="device"/> (cuda:N) with the driver and cuBLAS that <see cref="CudaLibraries"/>
    /// finds. A missing driver, cuBLAS or device is one sentence (<see cref="DeviceAvailability.RequireUsable"/>).
    /// </summary>
    /// <param name="device">A CUDA device selection.</param>
    /// <param name="what">What asked for it, prefixed to errors (e.g. "--device cuda:1"); null: "device cuda:N".</param>
    /// <param name="precision">The matrix products' precision; null: the GPU's default, bf16 (<see cref="DevicePrecisions.DefaultFor"/>).</param>
    /// <param name="fullAttention">How the full-attention networks' core runs (<see cref="FullAttentionCore"/>).</param>
    /// <exception cref="MediatorDiTException">
    /// The selection is the cpu, the device cannot be used here, or the fused full-attention core cannot run on it.
    /// </exception>
    public static DeviceModelFactory OpenCuda(DeviceSelection device, string? what = null, DevicePrecision? precision = null,
        FullAttentionCore fullAttention = FullAttentionCore.Tiles)
    {
        var cuda = CudaDevice.Open(device, what);
        try
        {
            return new DeviceModelFactory(cuda, precision ?? DevicePrecisions.DefaultFor(ComputeDevice.Cuda), fullAttention);
        }
        catch
        {
            cuda.Dispose();
            throw;
        }
    }

    /// <summary>The number format of the networks' matrix products.</summary>
    public DevicePrecision Precision { get; }

    /// <summary>How the full-attention networks' core runs.</summary>
    public FullAttentionCore FullAttention { get; }

    /// <summary>The accelerator the networks run on.</summary>
    public Accelerator Accelerator { get; }

    /// <inheritdoc/>
    public string DeviceName { get; }

    /// <summary><paramref name="model"/> on the device, its weights uploaded at the first call for that model.</summary>
    /// <exception cref="MediatorDiTException">The fused full-attention core was asked for and does not take the model's heads.</exception>
    public DeviceModelFunction Network(SiTModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_networks.TryGetValue(model, out var network))
        {
            network = new DeviceModelFunction(model, _kernels, DeviceGemms.For(Accelerator), guidance: null, Precision, fullAttention: FullAttention);
            _networks.Add(model, network);
        }
        return network;
    }

    /// <inheritdoc/>
    public IModelFunction Create(SiTModel model, ClassifierFreeGuidance? guidance) => Network(model).WithGuidance(guidance);

    /// <summary><paramref name="vae"/> on the device (<see cref="DeviceVae"/>, fp32), its weights uploaded at the first call for it.</summary>
    public IVaeDevice? CreateVae(AutoencoderKl vae)
    {
        ArgumentNullException.ThrowIfNull(vae);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_vaes.TryGetValue(vae, out var device))
        {
            device = new DeviceVae(vae, _kernels, DeviceGemms.For(Accelerator), DeviceName);
            _vaes.Add(vae, device);
        }
        return device;
    }

    /// <summary>Frees every network's device memory, then the accelerator and context this factory opened.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var network in _networks.Values) network.Dispose();
        _networks.Clear();
        foreach (var vae in _vaes.Values) vae.Dispose();
        _vaes.Clear();
        _ownedDevice?.Dispose();
    }
}
