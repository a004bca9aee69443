using System.Runtime.InteropServices;

namespace MediatorDiT.Devices;

/// <summary>
/// The few CUDA driver API calls needed to tell whether a GPU is usable: cuInit and cuDeviceGetCount, bound by hand
/// from the libcuda.so.1 that <see cref="CudaLibraries"/> found (no managed wrapper involved).
/// </summary>
public static unsafe class CudaDriver
{
    /// <summary>
    /// Loads <paramref name="driverPath"/>, initialises the driver and counts its devices. Returns the count, or -1
    /// with <paramref name="problem"/> set (the library does not load, lacks the calls, or cuInit fails).
    /// </summary>
    public static int CountDevices(string driverPath, out string? problem)
    {
        problem = null;
        if (!NativeLibrary.TryLoad(driverPath, out nint handle))
        {
            problem = $"the NVIDIA driver {driverPath} could not be loaded";
            return -1;
        }
        if (!NativeLibrary.TryGetExport(handle, "cuInit", out nint init) || !NativeLibrary.TryGetExport(handle, "cuDeviceGetCount", out nint count))
        {
            problem = $"{driverPath} lacks cuInit or cuDeviceGetCount (not a CUDA driver)";
            return -1;
        }
        int rc = ((delegate* unmanaged<uint, int>)init)(0);
        if (rc == 100) return 0; // CUDA_ERROR_NO_DEVICE
        if (rc != 0)
        {
            problem = $"the NVIDIA driver {driverPath} failed to start (cuInit error {rc}{(rc == 35 ? ": the driver is older than this CUDA library needs" : "")})";
            return -1;
        }
        int n = 0;
        rc = ((delegate* unmanaged<int*, int>)count)(&n);
        if (rc != 0)
        {
            problem = $"the NVIDIA driver {driverPath} could not count its devices (cuDeviceGetCount error {rc})";
            return -1;
        }
        return n;
    }
}

/// <summary>
/// Whether a device can run work now, as one sentence when not: the check the CLI's --device option, the pipeline
/// and the trainer make before any work, so that a missing driver, library or device is reported in words (the
/// caller prefixes what was asked, e.g. "--device cuda: ").
/// </summary>
public static class DeviceAvailability
{
    /// <summary>Why <paramref name="device"/> cannot run work here (no trailing period), or null when it can.</summary>
    public static string? Problem(Tensors.DeviceSelection device) => Problem(device, CudaSearchEnvironment.Process);

    /// <summary>As above, searching <paramref name="environment"/> for the libraries.</summary>
    public static string? Problem(Tensors.DeviceSelection device, CudaSearchEnvironment environment)
    {
        if (device.Device == Tensors.ComputeDevice.Cpu) return null;
        var report = CudaLibraries.Locate(environment);
        const string cpuOnly = "; this machine can run on the cpu only";
        if (report.Driver is null) return report.Missing + cpuOnly;
        int count = CudaDriver.CountDevices(report.Driver, out string? problem);
        if (problem is not null) return problem + cpuOnly;
        if (count == 0) return $"the NVIDIA driver ({report.Driver}) reports no CUDA device" + cpuOnly;
        if (device.Index >= count)
            return $"this machine has {count} CUDA device{(count == 1 ? "" : "s")} ({(count == 1 ? "cuda:0" : $"cuda:0 to cuda:{count - 1}")})";
        if (!report.Complete) return report.Missing;
        return null;
    }

    /// <summary>
    /// Throws <see cref="MediatorDiTException"/> ("WHAT: reason.") unless <paramref name="device"/> is usable here: the
    /// check before work that runs on the device (sampling through an <see cref="Sampling.IDeviceModelFactory"/>).
    /// </summary>
    public static void RequireUsable(Tensors.DeviceSelection device, string? what = null)
    {
        if (device.Device == Tensors.ComputeDevice.Cpu) return;
        if (Problem(device) is string problem) throw new MediatorDiTException($"{what ?? $"device {device}"}: {problem}.");
    }

    /// <summary>
    /// Throws <see cref="MediatorDiTException"/> ("WHAT: reason.") unless <paramref name="device"/> can run
    /// <paramref name="work"/>, work this build runs on the CPU only (training, serving, the benchmark, the analyses):
    /// a CUDA device is checked as by <see cref="RequireUsable"/>, so a missing driver, library or device is named, and
    /// then refused (docs/GPU.md).
    /// </summary>
    public static void Require(Tensors.DeviceSelection device, string work, string? what = null)
    {
        if (device.Device == Tensors.ComputeDevice.Cpu) return;
        what ??= $"device {device}";
        RequireUsable(device, what);
        throw new MediatorDiTException(
            $"{what}: the NVIDIA driver, cuBLAS and device {device} were found, but this build does not yet run {work} on the GPU (docs/GPU.md); use the cpu.");
    }
}
