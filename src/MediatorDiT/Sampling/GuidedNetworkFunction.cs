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
    public SiTModel Model { get; }
    public ClassifierFreeGuidance Guidance { get; }

    public GuidedNetworkFunction(SiTModel model, ClassifierFreeGuidance guidance)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(guidance);
        _ = new NetworkFunction(model); // same model requirements
        guidance.ChannelsFor(model.Config.InChannels); // refuses more guided channels than the model has
        Model = model;
        Guidance = guidance;
    }

    public int RowsPerSample => 2;

    public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y) =>
        Model.ForwardWithCfg(x, t, y, Guidance.Scale, Guidance.GuidedChannels);
}
