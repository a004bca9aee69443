using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.GpuCheck;

/// <summary>
/// What the driver's compiler made of the fused attention kernels (<see cref="FlashMmaKernels"/>): registers per thread,
/// local memory per thread and static shared memory per group, by cuFuncGetAttribute on the loaded functions. ILGPU
/// gives each inline instruction's operand a 4-byte local slot that the compiler is expected to keep in a register:
/// a local size of 0 says it did, and the registers say how many groups fit a multiprocessor.
/// </summary>
internal static unsafe class KernelChecks
{
    // CUfunction_attribute: CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, _LOCAL_SIZE_BYTES, _NUM_REGS.
    private const int SharedSizeBytes = 1, LocalSizeBytes = 3, NumRegs = 4;

    public static void FusedAttention(CheckDevice device, JsonObject entry)
    {
        if (device.Accelerator is not CudaAccelerator)
            throw new NotSupportedException("the driver's function attributes exist on a CUDA device only");
        if (!NativeLibrary.TryLoad("libcuda.so.1", out nint driver) || !NativeLibrary.TryGetExport(driver, "cuFuncGetAttribute", out nint export))
            throw new InvalidOperationException("the loaded NVIDIA driver has no cuFuncGetAttribute");
        var getAttribute = (delegate* unmanaged<int*, int, nint, int>)export;
        int Attribute(nint function, int attribute)
        {
            int value;
            int rc = getAttribute(&value, attribute, function);
            if (rc != 0) throw new InvalidOperationException($"cuFuncGetAttribute({attribute}) failed with CUDA error {rc}");
            return value;
        }
        foreach (string name in new[] { nameof(FlashMmaKernels.Forward), nameof(FlashMmaKernels.BackwardKeys), nameof(FlashMmaKernels.BackwardQueries) })
        {
            var kernel = (CudaKernel)device.Accelerator.LoadKernel(typeof(FlashMmaKernels).GetMethod(name)!);
            entry[name] = new JsonObject
            {
                ["registers_per_thread"] = Attribute(kernel.FunctionPtr, NumRegs),
                ["local_bytes_per_thread"] = Attribute(kernel.FunctionPtr, LocalSizeBytes),
                ["shared_bytes_per_group"] = Attribute(kernel.FunctionPtr, SharedSizeBytes),
            };
        }
        entry["note"] = "cuFuncGetAttribute on the loaded fused attention kernels: local bytes 0 = ILGPU's inline-operand slots kept in registers";
    }
}
