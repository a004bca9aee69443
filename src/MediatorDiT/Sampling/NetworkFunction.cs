using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>A network without guidance: the prediction is <see cref="SiTModel.Forward"/>.</summary>
public sealed class NetworkFunction : IModelFunction
{
    public SiTModel Model { get; }

    public NetworkFunction(SiTModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Config.ReturnedChannels != model.Config.InChannels)
            throw new MediatorDiTException(
                $"the {model.Config.Family} model returns {model.Config.ReturnedChannels} channels for {model.Config.InChannels} input channels; a transport sampler needs a SiT-style model that returns as many as it takes.");
        Model = model;
    }

    public int RowsPerSample => 1;

    public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y) => Model.Forward(x, t, y);
}
