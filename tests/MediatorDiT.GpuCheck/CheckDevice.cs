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

    private CheckDevice(Accelerator accelerator, CudaDevice? cuda, Context? cpuContext) =>
        (Accelerator, _cuda, _cpuContext) = (accelerator, cuda, cpuContext);

    /// <summary>The accelerator every case runs on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>Whether it is a CUDA device (else the CPU accelerator).</summary>
    public bool IsCuda => _cuda is not null;

    /// <summary>
    /// The card's dense bf16 tensor-core and fp32 peaks (<see cref="DevicePeaks"/>), the limits MFU is given against;
    /// H200's where the card is not in the table (the CPU accelerator included), and <see cref="PeaksKnown"/> false.
    /// </summary>
    public (double Bf16, double Fp32, string Description) Peaks =>
        DevicePeaks.For(Accelerator.Name, DevicePrecision.Bf16) is { } bf16 && DevicePeaks.For(Accelerator.Name, DevicePrecision.Fp32) is { } fp32
            ? (bf16.FlopsPerSecond, fp32.FlopsPerSecond, $"{bf16.Description}; {fp32.Description}")
            : (DevicePeaks.H200Bf16, DevicePeaks.H200Fp32, $"{Accelerator.Name} is not in the peak table: H200 SXM's dense peaks stand in");

    /// <summary>Whether <see cref="Peaks"/> are the card's own.</summary>
    public bool PeaksKnown => DevicePeaks.For(Accelerator.Name, DevicePrecision.Bf16) is not null;

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
