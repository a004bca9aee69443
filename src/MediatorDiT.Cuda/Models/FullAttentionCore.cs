using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Models;

/// <summary>
/// How a device network runs full attention's core, softmax(s Q K^T) V and its backward (docs/GPU.md, "Full
/// attention's core"). Mediator attention is not affected. The setting travels with the objects that run the device
/// work (<see cref="Sampling.DeviceModelFactory"/>, <see cref="Sampling.DeviceModelFunction"/>,
/// <see cref="Training.DeviceTrainingBackend"/>, <see cref="Performance.DevicePerformanceSuite"/>), which refuse
/// <see cref="Fused"/> where its kernels cannot run.
/// </summary>
public enum FullAttentionCore
{
    /// <summary>
    /// Tiles of strided-batched matrix products (cuBLAS on a GPU) with the softmax in kernels between them; the logits
    /// of a tile pass through device memory, never the whole N x N matrix. Runs at either precision on any device:
    /// the default until a card has timed the two against each other.
    /// </summary>
    Tiles,
    /// <summary>
    /// The fused tensor-core kernels, flash-style: the logits stay in registers, 64 keys at a time, and a training step
    /// keeps no P (its backward makes S again per key block). bf16 products only, on CUDA compute capability 8.0 or
    /// later, heads even and at most 80 wide (SiT's and DiT's 64 and 72). Agrees with <see cref="Tiles"/> to bf16
    /// rounding (it rounds P before dividing by the row's sum, the tiles after).
    /// </summary>
    Fused,
}

/// <summary>The written forms of <see cref="FullAttentionCore"/> ("tiles", "fused") and the checks that <see cref="FullAttentionCore.Fused"/> can run.</summary>
public static class FullAttentionCores
{
    /// <summary>The accepted forms, for help texts and errors.</summary>
    public const string Forms = "tiles or fused";

    /// <summary>"tiles" or "fused".</summary>
    public static string Name(this FullAttentionCore core) => core == FullAttentionCore.Fused ? "fused" : "tiles";

    /// <summary>Parses "tiles" or "fused" (any letter case, surrounding blanks); false for anything else.</summary>
    public static bool TryParse(string? text, out FullAttentionCore core)
    {
        core = FullAttentionCore.Tiles;
        switch (text?.Trim().ToLowerInvariant())
        {
            case "tiles":
                return true;
            case "fused":
                core = FullAttentionCore.Fused;
                return true;
            default:
                return false;
        }
    }

    /// <summary>As <see cref="TryParse"/>; one sentence naming <paramref name="what"/> and the accepted forms otherwise.</summary>
    /// <exception cref="MediatorDiTException">The text is neither form.</exception>
    public static FullAttentionCore Parse(string? text, string what = "the full-attention core") =>
        TryParse(text, out var core) ? core : throw new MediatorDiTException($"{what} must be {Forms}, got '{text}'.");

    /// <summary>
    /// Refuses <see cref="FullAttentionCore.Fused"/> where its kernels cannot run: products at <paramref name="precision"/>
    /// other than bf16, or an accelerator without 32-lane warps or, on CUDA, below compute capability 8.0.
    /// <see cref="FullAttentionCore.Tiles"/> runs everywhere.
    /// </summary>
    /// <exception cref="MediatorDiTException">Fused was asked for and cannot run here, in one sentence saying why.</exception>
    public static void Check(this FullAttentionCore core, Accelerator accelerator, DevicePrecision precision)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        if (core != FullAttentionCore.Fused) return;
        if (precision != DevicePrecision.Bf16)
            throw new MediatorDiTException($"the fused full-attention core runs bf16 products only; these are {precision.Name()} (use bf16, or the tiles).");
        if (!KernelSet.FlashKernelsRunOn(accelerator))
            throw new MediatorDiTException($"the fused full-attention core needs {KernelSet.FlashKernelsNeed}; {accelerator.Name} is not one (use the tiles).");
    }

    /// <summary>
    /// Refuses <see cref="FullAttentionCore.Fused"/> for a full-attention model <paramref name="cfg"/> whose heads the
    /// fused kernels do not take (odd, or wider than 80); mediator attention and the tiles take every model.
    /// </summary>
    /// <exception cref="MediatorDiTException">Fused was asked for a model whose heads it does not take.</exception>
    public static void Check(this FullAttentionCore core, ModelConfig cfg)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        if (core != FullAttentionCore.Fused || cfg.Attention == AttentionKind.Mediator || FlashMmaKernels.TakesHead(cfg.HeadDim)) return;
        throw new MediatorDiTException(
            $"the fused full-attention core takes heads even and at most {FlashMmaKernels.MaxHeadDim} wide; this model's are {cfg.HeadDim} " +
            $"(hidden size {cfg.HiddenSize} over {cfg.NumHeads} heads; use the tiles).");
    }

    /// <summary>The core that is not <paramref name="core"/> (what a comparison times beside it).</summary>
    public static FullAttentionCore Other(this FullAttentionCore core) =>
        core == FullAttentionCore.Fused ? FullAttentionCore.Tiles : FullAttentionCore.Fused;

    /// <summary>Sets <paramref name="products"/>' fused forward and backward to <paramref name="core"/> (checked by the caller before it allocated them).</summary>
    internal static void ApplyTo(this FullAttentionCore core, AttentionProducts products) =>
        products.FusedForward = products.FusedBackward = core == FullAttentionCore.Fused;
}
