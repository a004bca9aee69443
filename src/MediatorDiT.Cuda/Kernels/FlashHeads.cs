namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The head width a fused attention kernel (<see cref="FlashMmaKernels"/>) is compiled for, as its type argument. With
/// the width a constant, the compiler drops the k-steps and channel tiles past it and their run-time tests and folds
/// the bounds: at SiT-S's 64 channels a forward block is 553 instructions where the kernel for any width takes 700
/// (ptxas 11.8, docs/GPU.md). <see cref="FlashHeads.For"/> picks the type for a width.
/// </summary>
internal interface IFlashHead
{
    /// <summary>The head width: the constant this type stands for, or <paramref name="headDim"/> as launched.</summary>
    int Width(int headDim);
}

/// <summary>Any even width up to <see cref="FlashMmaKernels.MaxHeadDim"/>, as launched.</summary>
internal readonly struct AnyFlashHead : IFlashHead
{
    public int Width(int headDim) => headDim;
}

/// <summary>64 channels: SiT-S, SiT-B and DiT-S, -B (384 / 6, 768 / 12), 4 k-steps, 8 channel tiles.</summary>
internal readonly struct FlashHead64 : IFlashHead
{
    public int Width(int headDim) => 64;
}

/// <summary>72 channels: SiT-XL and DiT-XL (1152 / 16), 5 k-steps (the last half zeros), 9 channel tiles.</summary>
internal readonly struct FlashHead72 : IFlashHead
{
    public int Width(int headDim) => 72;
}

/// <summary>Which <see cref="IFlashHead"/> a fused kernel is compiled with for a head width.</summary>
internal static class FlashHeads
{
    /// <summary>Every head type, for tests that compile each kernel once per type.</summary>
    public static readonly Type[] All = [typeof(AnyFlashHead), typeof(FlashHead64), typeof(FlashHead72)];

    /// <summary>The type for <paramref name="headDim"/>: a constant one where there is, else <see cref="AnyFlashHead"/>.</summary>
    public static Type For(int headDim) => All[IndexFor(headDim)];

    /// <summary>Where <see cref="For"/>'s type stands in <see cref="All"/>.</summary>
    public static int IndexFor(int headDim) => headDim switch { 64 => 1, 72 => 2, _ => 0 };
}
