using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.GpuCheck;

/// <summary>
/// What the driver's compiler made of the fused attention kernels (<see cref="FlashMmaKernels"/>): registers per thread,
/// local memory per thread and static shared memory per group, by cuFuncGetAttribute on the functions as the library
/// loads them (<see cref="InlineOperandSlots.Load"/>: ILGPU's 4-byte local slot per inline-instruction operand moved
/// into a register), and the local memory of the same kernels as ILGPU alone compiles them. A local size of 0 says no
/// operand goes through memory; the registers say how many groups fit a multiprocessor.
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
            var heads = new JsonObject();
            foreach (var head in FlashHeads.All) // compiled for any head width, and for 64 and 72 channels (SiT-S/2's and SiT-XL/2's)
            {
                var method = FlashMmaKernels.Instance(name, head);
                using var kernel = (CudaKernel)InlineOperandSlots.Load(device.Accelerator, method);
                using var ilgpus = (CudaKernel)device.Accelerator.LoadKernel(method);
                heads[head.Name] = new JsonObject
                {
                    ["registers_per_thread"] = Attribute(kernel.FunctionPtr, NumRegs),
                    ["local_bytes_per_thread"] = Attribute(kernel.FunctionPtr, LocalSizeBytes),
                    ["shared_bytes_per_group"] = Attribute(kernel.FunctionPtr, SharedSizeBytes),
                    ["local_bytes_per_thread_with_ilgpus_slots"] = Attribute(ilgpus.FunctionPtr, LocalSizeBytes),
                    ["registers_per_thread_with_ilgpus_slots"] = Attribute(ilgpus.FunctionPtr, NumRegs),
                };
            }
            entry[name] = heads;
        }
        entry["note"] = "cuFuncGetAttribute on the fused attention kernels as the library loads them (local bytes 0: no operand goes through memory) and as ILGPU alone compiles them (each inline-instruction operand in a 4-byte local slot)";
    }
}
