using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>A network without guidance: the prediction is <see cref="SiTModel.Forward"/>.</summary>
public sealed class NetworkFunction : IModelFunction
{
    /// <summary>The network.</summary>
    public SiTModel Model { get; }

    /// <summary>Wraps <paramref name="model"/> for a transport sampler.</summary>
    /// <param name="model">A SiT-style model, returning as many channels as it takes (not a learned-sigma DiT).</param>
    /// <exception cref="MediatorDiTException">The model returns a different channel count than it takes.</exception>
    public NetworkFunction(SiTModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Config.ReturnedChannels != model.Config.InChannels)
            throw new MediatorDiTException(
                $"the {model.Config.Family} model returns {model.Config.ReturnedChannels} channels for {model.Config.InChannels} input channels; a transport sampler needs a SiT-style model that returns as many as it takes.");
        Model = model;
    }

    /// <inheritdoc/>
    public int RowsPerSample => 1;

    /// <inheritdoc/>
    public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y) => Model.Forward(x, t, y);
}
