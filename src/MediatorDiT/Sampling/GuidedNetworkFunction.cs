using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// A network under classifier-free guidance, the official forward_with_cfg: the batch (2n, C, H, W) is
/// [conditional rows; unconditional rows] with the null label (num_classes) in the second half; the first
/// half's states are run with both halves' labels in one call and the guided prediction goes to both
/// halves (on the guided channels; other channels keep each half's own prediction, as officially).
/// </summary>
public sealed class GuidedNetworkFunction : IModelFunction
{
    /// <summary>The guided network.</summary>
    public SiTModel Model { get; }
    /// <summary>The guidance scale and guided channels.</summary>
    public ClassifierFreeGuidance Guidance { get; }

    /// <summary>Runs <paramref name="model"/> under <paramref name="guidance"/>.</summary>
    /// <param name="model">A SiT-style model (returning as many channels as it takes).</param>
    /// <param name="guidance">The guidance; it may not guide more channels than the model has.</param>
    /// <exception cref="MediatorDiTException">The model returns a different channel count, or guidance asks for too many channels.</exception>
    public GuidedNetworkFunction(SiTModel model, ClassifierFreeGuidance guidance)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(guidance);
        _ = new NetworkFunction(model); // same model requirements
        guidance.ChannelsFor(model.Config.InChannels); // refuses more guided channels than the model has
        Model = model;
        Guidance = guidance;
    }

    /// <inheritdoc/>
    public int RowsPerSample => 2;

    /// <inheritdoc/>
    public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y) =>
        Model.ForwardWithCfg(x, t, y, Guidance.Scale, Guidance.GuidedChannels);
}
