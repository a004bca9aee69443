using ILGPU;
using ILGPU.Runtime;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>The launcher of <see cref="FlashMmaKernels"/>, full attention's fused forward on the tensor cores.</summary>
internal sealed partial class KernelSet
{
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, int, int, int, float>? _flashMma;

    /// <summary>
    /// Whether <see cref="FlashForward"/> runs here: warps of 32 lanes (the fragments' layout) and groups of
    /// <see cref="FlashMmaKernels.Warps"/> of them; a CUDA card of compute capability 8.0 or later for the instruction
    /// itself (the CPU accelerator shaped as a GPU emulates it).
    /// </summary>
    public bool FlashForwardRuns =>
        _accelerator.WarpSize == 32 && _accelerator.MaxNumThreadsPerGroup >= FlashMmaKernels.Warps * 32
        && (_accelerator is not ILGPU.Runtime.Cuda.CudaAccelerator cuda || cuda.Architecture is { Major: >= 8 });

    /// <summary>
    /// o (items, N, hd) fp32 and lse (items, N) = full attention of head-major bf16 q, k, v (items, N, hd) with logits
    /// scaled by <paramref name="scale"/>, in one fused launch (<see cref="FlashMmaKernels.Forward"/>); hd even and at
    /// most <see cref="FlashMmaKernels.MaxHeadDim"/>.
    /// </summary>
    public void FlashForward(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> o, ArrayView<float> lse,
        int items, int tokens, int headDim, float scale)
    {
        Check(FlashForwardRuns, "the fused attention kernel needs warps of 32 lanes, groups of 128 threads and, on CUDA, compute capability 8.0 or later");
        Check(headDim > 0 && headDim % 2 == 0 && headDim <= FlashMmaKernels.MaxHeadDim, $"the fused attention kernel takes an even head width of at most {FlashMmaKernels.MaxHeadDim}, not {headDim}");
        long e = (long)items * tokens * headDim;
        Check(q.Length >= e && k.Length >= e && v.Length >= e && o.Length >= e, "q, k, v or o is shorter than items x N x hd");
        Check(lse.Length >= (long)items * tokens, "lse is shorter than items x N");
        int rowBlocks = (tokens + FlashMmaKernels.Rows - 1) / FlashMmaKernels.Rows;
        Check((long)items * rowBlocks <= int.MaxValue, "too many (item, row block) groups for one launch");
        (_flashMma ??= _accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, int, int, int, float>(
            FlashMmaKernels.Forward))(new KernelConfig(items * rowBlocks, FlashMmaKernels.Warps * 32), q, k, v, o, lse, tokens, headDim, rowBlocks, scale);
    }
}
