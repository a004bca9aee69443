using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Devices;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Sampling;

/// <summary>
/// The <see cref="IDeviceModelFactory"/> of this backend: networks as <see cref="DeviceModelFunction"/>s on one ILGPU
/// accelerator, a CUDA device (<see cref="OpenCuda"/>, products by cuBLAS) or any other accelerator (the CPU
/// accelerator the tests use, products by the ILGPU SGEMM). Each network's weights are uploaded once, at its first
/// <see cref="Create"/>, and shared by every guidance setting and ladder built from it; the kernels are compiled once
/// per factory. Disposing it frees every network and, when it opened them, the accelerator and ILGPU context.
/// </summary>
public sealed class DeviceModelFactory : IDeviceModelFactory
{
    private readonly Dictionary<SiTModel, DeviceModelFunction> _networks = new(ReferenceEqualityComparer.Instance);
    private readonly KernelSet _kernels;
    private readonly Context? _ownedContext;
    private readonly Accelerator? _ownedAccelerator;
    private bool _disposed;

    /// <summary>Networks on <paramref name="accelerator"/>, which stays the caller's to dispose (after this factory).</summary>
    /// <param name="accelerator">The accelerator to run on.</param>
    /// <param name="deviceName">Where that is, in words; null: the accelerator's name.</param>
    public DeviceModelFactory(Accelerator accelerator, string? deviceName = null)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        Accelerator = accelerator;
        DeviceName = deviceName ?? accelerator.Name;
        _kernels = new KernelSet(accelerator);
    }

    private DeviceModelFactory(Context context, Accelerator accelerator, string deviceName) : this(accelerator, deviceName)
    {
        _ownedContext = context;
        _ownedAccelerator = accelerator;
    }

    /// <summary>
    /// Opens CUDA device <paramref name="device"/> (cuda:N) with the driver and cuBLAS that <see cref="CudaLibraries"/>
    /// finds. A missing driver, cuBLAS or device is one sentence (<see cref="DeviceAvailability.RequireUsable"/>).
    /// </summary>
    /// <param name="device">A CUDA device selection.</param>
    /// <param name="what">What asked for it, prefixed to errors (e.g. "--device cuda:1"); null: "device cuda:N".</param>
    /// <exception cref="MediatorDiTException">The selection is the cpu, or the device cannot be used here.</exception>
    public static DeviceModelFactory OpenCuda(DeviceSelection device, string? what = null)
    {
        what ??= $"device {device}";
        if (device.Device != ComputeDevice.Cuda) throw new MediatorDiTException($"{what}: a CUDA device model factory needs cuda or cuda:N, got {device}.");
        DeviceAvailability.RequireUsable(device, what);
        IlgpuDriver.PointAt(CudaLibraries.Locate().Driver!);
        var context = Context.Create(builder => builder.Cuda());
        try
        {
            int count = context.GetCudaDevices().Count;
            if (device.Index >= count)
                throw new MediatorDiTException(
                    $"{what}: ILGPU sees {count} CUDA device{(count == 1 ? "" : "s")} where the driver reports more; its driver did not load (docs/GPU.md).");
            var accelerator = context.CreateCudaAccelerator(device.Index);
            return new DeviceModelFactory(context, accelerator, $"{device} ({accelerator.Name})");
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>The accelerator the networks run on.</summary>
    public Accelerator Accelerator { get; }

    /// <inheritdoc/>
    public string DeviceName { get; }

    /// <summary><paramref name="model"/> on the device, its weights uploaded at the first call for that model.</summary>
    public DeviceModelFunction Network(SiTModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_networks.TryGetValue(model, out var network))
        {
            network = new DeviceModelFunction(model, _kernels, DeviceGemms.For(Accelerator), guidance: null);
            _networks.Add(model, network);
        }
        return network;
    }

    /// <inheritdoc/>
    public IModelFunction Create(SiTModel model, ClassifierFreeGuidance? guidance) => Network(model).WithGuidance(guidance);

    /// <summary>Frees every network's device memory, then the accelerator and context this factory opened.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var network in _networks.Values) network.Dispose();
        _networks.Clear();
        _ownedAccelerator?.Dispose();
        _ownedContext?.Dispose();
    }

    /// <summary>
    /// ILGPU binds the driver by the name "cuda" (libcuda.so), which machines with only the driver's libcuda.so.1 lack;
    /// where the runtime's own search fails, the name resolves to the libcuda.so.1 that <see cref="CudaLibraries"/> found.
    /// </summary>
    private static class IlgpuDriver
    {
        private static readonly Assembly s_ilgpu = typeof(Context).Assembly;
        private static string? s_path;
        private static int s_hooked;

        public static void PointAt(string driverPath)
        {
            s_path = driverPath;
            if (Interlocked.Exchange(ref s_hooked, 1) == 0) AssemblyLoadContext.Default.ResolvingUnmanagedDll += Resolve;
        }

        private static IntPtr Resolve(Assembly assembly, string name) =>
            assembly == s_ilgpu && name == "cuda" && s_path is { } path && NativeLibrary.TryLoad(path, out var handle) ? handle : IntPtr.Zero;
    }
}
