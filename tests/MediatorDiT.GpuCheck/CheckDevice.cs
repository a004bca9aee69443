using System.Text.Json.Nodes;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using CudaDevice = MediatorDiT.Cuda.CudaDevice;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Devices;
using MediatorDiT.Tensors;

namespace MediatorDiT.GpuCheck;

/// <summary>
/// The accelerator the check runs on: CUDA device 0 opened as the library opens it (<see cref="CudaDevice.Open"/>:
/// driver and cuBLAS from <see cref="CudaLibraries"/>, products by cuBLAS), or ILGPU's CPU accelerator (products by the
/// ILGPU SGEMM), and what it can say about itself and its memory.
/// </summary>
public sealed class CheckDevice : IDisposable
{
    private readonly CudaDevice? _cuda;
    private readonly Context? _cpuContext;

    private CheckDevice(Accelerator accelerator, CudaDevice? cuda, Context? cpuContext)
    {
        (Accelerator, _cuda, _cpuContext) = (accelerator, cuda, cpuContext);
        Peaks = CheckPeaks.For(accelerator.Name);
    }

    /// <summary>The accelerator every case runs on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>Whether it is a CUDA device (else the CPU accelerator).</summary>
    public bool IsCuda => _cuda is not null;

    /// <summary>The limits MFU is given against, looked up once from the card's name.</summary>
    public CheckPeaks Peaks { get; }

    /// <summary>Opens "cuda" (device 0) or "cpu" (ILGPU's CPU accelerator, parallel mode, default math).</summary>
    /// <param name="kind">cuda or cpu.</param>
    public static CheckDevice Open(string kind)
    {
        if (kind == "cuda")
        {
            var cuda = CudaDevice.Open(new DeviceSelection(ComputeDevice.Cuda, 0), "--accelerator cuda");
            return new CheckDevice(cuda.Accelerator, cuda, null);
        }
        var context = Context.Create(builder => builder.CPU().Math(MathMode.Default));
        return new CheckDevice(context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel), null, context);
    }

    /// <summary>
    /// Bytes of device memory in use on the whole card (cuMemGetInfo: total - free), or null where the accelerator is not
    /// a CUDA device. Includes the context, loaded kernels and cuBLAS's workspace, and other processes' memory.
    /// </summary>
    public long? MemoryInUse()
    {
        if (!IsCuda) return null;
        Accelerator.Synchronize();
        var error = CudaAPI.CurrentAPI.GetMemoryInfo(out long free, out long total);
        return error == CudaError.CUDA_SUCCESS ? total - free : null;
    }

    /// <summary>The libraries found (<see cref="CudaLibraryReport"/>) as JSON: each path and the folders searched.</summary>
    public static void DescribeLibraries(JsonObject entry)
    {
        var report = CudaLibraries.Locate();
        entry["driver"] = report.Driver;
        entry["cublas"] = report.Cublas;
        entry["cublas_lt"] = report.CublasLt;
        entry["complete"] = report.Complete;
        entry["missing"] = report.Missing;
        entry["searched"] = new JsonArray(report.Searched.Select(f => (JsonNode)$"{f.Folder} ({f.Source})").ToArray());
        entry["report"] = report.Describe();
    }

    /// <summary>The card (or CPU accelerator) as JSON: name, memory, multiprocessors and, on CUDA, architecture and driver.</summary>
    public void Describe(JsonObject entry)
    {
        var a = Accelerator;
        entry["accelerator"] = IsCuda ? "cuda" : "cpu";
        entry["name"] = a.Name;
        entry["memory_bytes"] = a.MemorySize;
        entry["multiprocessors"] = a.NumMultiprocessors;
        entry["warp_size"] = a.WarpSize;
        entry["max_threads_per_group"] = a.MaxNumThreadsPerGroup;
        entry["max_shared_memory_per_group"] = a.MaxSharedMemoryPerGroup;
        if (a is CudaAccelerator cuda)
        {
            entry["compute_capability"] = cuda.Architecture.ToString();
            entry["ptx_instruction_set"] = cuda.InstructionSet.ToString();
            entry["driver_version"] = cuda.DriverVersion.ToString();
            entry["clock_rate_khz"] = cuda.ClockRate;
            entry["l2_cache_bytes"] = cuda.L2CacheSize;
            entry["memory_in_use_at_start_bytes"] = MemoryInUse();
        }
    }

    /// <summary>Frees the accelerator and its context.</summary>
    public void Dispose()
    {
        if (_cuda is not null) _cuda.Dispose();
        else
        {
            Accelerator.Dispose();
            _cpuContext!.Dispose();
        }
    }
}

/// <summary>
/// A card's dense bf16 tensor-core and fp32 peaks, FLOP/s (<see cref="DevicePeaks"/>); H200's where the card is not in
/// that table (the CPU accelerator included), with <paramref name="Known"/> false.
/// </summary>
/// <param name="Bf16">Dense bf16 tensor-core peak with fp32 accumulation.</param>
/// <param name="Fp32">fp32 peak on the CUDA cores (no TF32).</param>
/// <param name="Known">Whether these are the card's own peaks.</param>
/// <param name="Description">What the peaks are, in words.</param>
public sealed record CheckPeaks(double Bf16, double Fp32, bool Known, string Description)
{
    /// <summary>The peaks of the card named <paramref name="deviceName"/> (as the driver names it).</summary>
    public static CheckPeaks For(string deviceName) =>
        DevicePeaks.For(deviceName, DevicePrecision.Bf16) is { } bf16 && DevicePeaks.For(deviceName, DevicePrecision.Fp32) is { } fp32
            ? new CheckPeaks(bf16.FlopsPerSecond, fp32.FlopsPerSecond, true, $"{bf16.Description}; {fp32.Description}")
            : new CheckPeaks(DevicePeaks.H200Bf16, DevicePeaks.H200Fp32, false, $"{deviceName} is not in the peak table: H200 SXM's dense peaks stand in");
}
