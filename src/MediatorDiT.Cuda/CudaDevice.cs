using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Devices;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda;

/// <summary>
/// One opened CUDA device: the ILGPU context and the accelerator of cuda:N, found through the driver and cuBLAS that
/// <see cref="CudaLibraries"/> locates. Sampling (<see cref="Sampling.DeviceModelFactory"/>) and training
/// (<see cref="Training.DeviceTrainingBackend"/>) run on its <see cref="Accelerator"/>. Disposing it frees both.
/// </summary>
public sealed class CudaDevice : IDisposable
{
    private readonly Context _context;

    private CudaDevice(Context context, Accelerator accelerator, string name) => (_context, Accelerator, Name) = (context, accelerator, name);

    /// <summary>The accelerator of the opened device.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>The device in words, e.g. "cuda:0 (NVIDIA H200)".</summary>
    public string Name { get; }

    /// <summary>
    /// Opens <paramref name="device"/> (cuda or cuda:N). A missing driver, cuBLAS or device is one sentence
    /// (<see cref="DeviceAvailability.RequireUsable"/>).
    /// </summary>
    /// <param name="device">A CUDA device selection.</param>
    /// <param name="what">What asked for it, prefixed to errors (e.g. "--device cuda:1"); null: "device cuda:N".</param>
    /// <exception cref="MediatorDiTException">The selection is the cpu, or the device cannot be used here.</exception>
    public static CudaDevice Open(DeviceSelection device, string? what = null)
    {
        what ??= $"device {device}";
        if (device.Device != ComputeDevice.Cuda) throw new MediatorDiTException($"{what}: a CUDA device needs cuda or cuda:N, got {device}.");
        DeviceAvailability.RequireUsable(device, what);
        IlgpuDriver.PointAt(CudaLibraries.Locate().Driver!);
        var context = Context.Create(builder => Kernels.PtxIntrinsics.Register(builder.Cuda()));
        try
        {
            int count = context.GetCudaDevices().Count;
            if (device.Index >= count)
                throw new MediatorDiTException(
                    $"{what}: ILGPU sees {count} CUDA device{(count == 1 ? "" : "s")} where the driver reports more; its driver did not load (docs/GPU.md).");
            var accelerator = context.CreateCudaAccelerator(device.Index);
            return new CudaDevice(context, accelerator, $"{device} ({accelerator.Name})");
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>Frees the accelerator and the ILGPU context.</summary>
    public void Dispose()
    {
        Accelerator.Dispose();
        _context.Dispose();
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
