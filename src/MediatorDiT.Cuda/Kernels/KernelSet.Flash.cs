using ILGPU;
using ILGPU.Runtime;
using FlashForwardLauncher = System.Action<ILGPU.Runtime.AcceleratorStream, ILGPU.KernelConfig, ILGPU.ArrayView<ushort>, ILGPU.ArrayView<ushort>,
    ILGPU.ArrayView<ushort>, ILGPU.ArrayView<float>, ILGPU.ArrayView<float>, int, int, int, float>;
using FlashKeysLauncher = System.Action<ILGPU.Runtime.AcceleratorStream, ILGPU.KernelConfig, ILGPU.ArrayView<ushort>, ILGPU.ArrayView<ushort>,
    ILGPU.ArrayView<ushort>, ILGPU.ArrayView<ushort>, ILGPU.ArrayView<float>, ILGPU.ArrayView<float>, ILGPU.ArrayView<float>, ILGPU.ArrayView<float>,
    int, int, int, float>;
using FlashQueriesLauncher = System.Action<ILGPU.Runtime.AcceleratorStream, ILGPU.KernelConfig, ILGPU.ArrayView<ushort>, ILGPU.ArrayView<ushort>,
    ILGPU.ArrayView<ushort>, ILGPU.ArrayView<ushort>, ILGPU.ArrayView<float>, ILGPU.ArrayView<float>, ILGPU.ArrayView<float>, int, int, int, float>;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>The launchers of <see cref="FlashMmaKernels"/>, full attention's fused forward and backward on the tensor cores.</summary>
internal sealed partial class KernelSet
{
    // Per head type (FlashHeads.All's order), loaded with their inline-operand slots in registers (InlineOperandSlots), on
    // the default stream as every other kernel.
    private readonly FlashForwardLauncher?[] _flashMma = new FlashForwardLauncher?[FlashHeads.All.Length];
    private readonly FlashKeysLauncher?[] _flashKeys = new FlashKeysLauncher?[FlashHeads.All.Length];
    private readonly FlashQueriesLauncher?[] _flashQueries = new FlashQueriesLauncher?[FlashHeads.All.Length];

    /// <summary>
    /// Whether the fused attention kernels (<see cref="FlashForward"/>, <see cref="FlashBackward"/>) run here: warps of 32
    /// lanes (the fragments' layout) and groups of <see cref="FlashMmaKernels.Warps"/> of them; a CUDA card of compute
    /// capability 8.0 or later for the instruction itself (the CPU accelerator shaped as a GPU emulates it).
    /// </summary>
    public bool FlashKernelsRun => FlashKernelsRunOn(_accelerator);

    /// <summary>Whether the fused attention kernels run on <paramref name="accelerator"/> (as <see cref="FlashKernelsRun"/>).</summary>
    public static bool FlashKernelsRunOn(Accelerator accelerator) =>
        accelerator.WarpSize == 32 && accelerator.MaxNumThreadsPerGroup >= FlashMmaKernels.Warps * 32
        && (accelerator is not ILGPU.Runtime.Cuda.CudaAccelerator cuda || cuda.Architecture is { Major: >= 8 });

    /// <summary>What <see cref="FlashKernelsRunOn"/> asks of an accelerator, in words.</summary>
    public const string FlashKernelsNeed = "warps of 32 lanes, groups of 128 threads and, on CUDA, compute capability 8.0 or later";

    /// <summary>
    /// o (items, N, hd) fp32 and lse (items, N) = full attention of head-major bf16 q, k, v (items, N, hd) with logits
    /// scaled by <paramref name="scale"/>, in one fused launch (<see cref="FlashMmaKernels.Forward"/>); hd even and at
    /// most <see cref="FlashMmaKernels.MaxHeadDim"/>.
    /// </summary>
    public void FlashForward(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> o, ArrayView<float> lse,
        int items, int tokens, int headDim, float scale)
    {
        var (launch, blocks) = FlashLaunch(items, tokens, headDim);
        long e = (long)items * tokens * headDim;
        Check(q.Length >= e && k.Length >= e && v.Length >= e && o.Length >= e, "q, k, v or o is shorter than items x N x hd");
        Check(lse.Length >= (long)items * tokens, "lse is shorter than items x N");
        int head = FlashHeads.IndexFor(headDim, FlashHeads.Aligned(q, k, v));
        (_flashMma[head] ??= LoadFlash<FlashForwardLauncher>(nameof(FlashMmaKernels.Forward), head))(
            _accelerator.DefaultStream, launch, q, k, v, o, lse, tokens, headDim, blocks, scale);
    }

    /// <summary>
    /// dq, dk, dv (items, N, hd) fp32, overwritten = the gradients of full attention from head-major bf16 q, k, v, dO
    /// (items, N, hd), the forward's lse and delta = rowsum(dO O) (items, N), in two fused launches
    /// (<see cref="FlashMmaKernels.BackwardKeys"/>, <see cref="FlashMmaKernels.BackwardQueries"/>); hd even and at most
    /// <see cref="FlashMmaKernels.MaxHeadDim"/>.
    /// </summary>
    public void FlashBackward(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> dO, ArrayView<float> lse, ArrayView<float> delta,
        ArrayView<float> dq, ArrayView<float> dk, ArrayView<float> dv, int items, int tokens, int headDim, float scale)
    {
        var (launch, blocks) = FlashLaunch(items, tokens, headDim);
        long e = (long)items * tokens * headDim;
        Check(q.Length >= e && k.Length >= e && v.Length >= e && dO.Length >= e, "q, k, v or dO is shorter than items x N x hd");
        Check(dq.Length >= e && dk.Length >= e && dv.Length >= e, "dq, dk or dv is shorter than items x N x hd");
        Check(lse.Length >= (long)items * tokens && delta.Length >= (long)items * tokens, "lse or delta is shorter than items x N");
        var stream = _accelerator.DefaultStream;
        int head = FlashHeads.IndexFor(headDim, FlashHeads.Aligned(q, k, v, dO));
        (_flashKeys[head] ??= LoadFlash<FlashKeysLauncher>(nameof(FlashMmaKernels.BackwardKeys), head))(
            stream, launch, q, k, v, dO, lse, delta, dk, dv, tokens, headDim, blocks, scale);
        (_flashQueries[head] ??= LoadFlash<FlashQueriesLauncher>(nameof(FlashMmaKernels.BackwardQueries), head))(
            stream, launch, q, k, v, dO, lse, delta, dq, tokens, headDim, blocks, scale);
    }

    /// <summary>
    /// One of <see cref="FlashMmaKernels"/>' kernels for head type <c>FlashHeads.All[head]</c>, loaded by
    /// <see cref="InlineOperandSlots.Load"/>: on a card, each inline instruction's operands in registers rather than in
    /// ILGPU's local-memory slots.
    /// </summary>
    private TLauncher LoadFlash<TLauncher>(string kernel, int head) where TLauncher : Delegate =>
        InlineOperandSlots.Load(_accelerator, FlashMmaKernels.Instance(kernel, FlashHeads.All[head])).CreateLauncherDelegate<TLauncher>();

    /// <summary>
    /// The fused kernels' launch over items x N: one group of <see cref="FlashMmaKernels.Warps"/> warps per (item, block
    /// of 64 rows), and the blocks per item; refused where the kernels do not run or do not take the head.
    /// </summary>
    private (KernelConfig Launch, int Blocks) FlashLaunch(int items, int tokens, int headDim)
    {
        Check(FlashKernelsRun, $"the fused attention kernels need {FlashKernelsNeed}");
        Check(FlashMmaKernels.TakesHead(headDim), $"the fused attention kernels take an even head width of at most {FlashMmaKernels.MaxHeadDim}, not {headDim}");
        int blocks = (tokens + FlashMmaKernels.Rows - 1) / FlashMmaKernels.Rows;
        Check((long)items * blocks <= int.MaxValue, "too many (item, block) groups for one launch");
        return (new KernelConfig(items * blocks, FlashMmaKernels.Warps * 32), blocks);
    }
}
