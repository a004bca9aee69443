namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The head width a fused attention kernel (<see cref="FlashMmaKernels"/>) is compiled for, as its type argument. With
/// the width a constant, the compiler drops the k-steps and channel tiles past it and their run-time tests and folds
/// the bounds, and where the width is a multiple of 8 and the views are aligned it stages the tensors 8 bytes at a time
/// (<see cref="IFlashHead.Wide"/>): about 1,030 instructions a warp per forward block at 72 channels, where 2-byte
/// staging took about 2,420 (ptxas 11.8, docs/GPU.md). <see cref="FlashHeads.IndexFor"/> picks the type.
/// </summary>
internal interface IFlashHead
{
    /// <summary>The head width: the constant this type stands for, or <paramref name="headDim"/> as launched.</summary>
    int Width(int headDim);

    /// <summary>
    /// Whether the kernels read q, k, v and dO 4 channels (8 bytes) at a time when they stage them: the width is a
    /// multiple of 8 and the launcher has checked that the views start 8-byte aligned (<see cref="FlashHeads.IndexFor"/>).
    /// </summary>
    bool Wide { get; }
}

/// <summary>Any even width up to <see cref="FlashMmaKernels.MaxHeadDim"/>, as launched.</summary>
internal readonly struct AnyFlashHead : IFlashHead
{
    public int Width(int headDim) => headDim;

    public bool Wide => false;
}

/// <summary>64 channels: SiT-S, SiT-B and DiT-S, -B (384 / 6, 768 / 12), 4 k-steps, 8 channel tiles.</summary>
internal readonly struct FlashHead64 : IFlashHead
{
    public int Width(int headDim) => 64;

    public bool Wide => true;
}

/// <summary>72 channels: SiT-XL and DiT-XL (1152 / 16), 5 k-steps (the last half zeros), 9 channel tiles.</summary>
internal readonly struct FlashHead72 : IFlashHead
{
    public int Width(int headDim) => 72;

    public bool Wide => true;
}

/// <summary>Which <see cref="IFlashHead"/> a fused kernel is compiled with for a head width.</summary>
internal static class FlashHeads
{
    /// <summary>Every head type, in the order KernelSet keeps a kernel for each (and the tests compile each).</summary>
    public static readonly Type[] All = [typeof(AnyFlashHead), typeof(FlashHead64), typeof(FlashHead72)];

    /// <summary>
    /// Where the type for <paramref name="headDim"/> stands in <see cref="All"/>: a constant one (which reads 8 bytes at a
    /// time) where there is one and the views are <paramref name="aligned"/> to 8 bytes, else <see cref="AnyFlashHead"/>.
    /// </summary>
    public static int IndexFor(int headDim, bool aligned) => !aligned ? 0 : headDim switch { 64 => 1, 72 => 2, _ => 0 };

    /// <summary>Whether every view starts 8-byte aligned in its buffer (device buffers themselves are 256-byte aligned).</summary>
    public static bool Aligned(ILGPU.ArrayView<ushort> a, ILGPU.ArrayView<ushort> b, ILGPU.ArrayView<ushort> c, ILGPU.ArrayView<ushort> d = default) =>
        Aligned8(a) && Aligned8(b) && Aligned8(c) && Aligned8(d);

    // Through the interface without boxing (ILGPU keeps a view's index internal).
    private static bool Aligned8<TView>(TView view) where TView : ILGPU.IContiguousArrayView => view.IndexInBytes % 8 == 0;
}
