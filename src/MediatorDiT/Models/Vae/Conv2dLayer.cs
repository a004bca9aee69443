using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models.Vae;

/// <summary>An nn.Conv2d with bias: parameters "{name}.weight" (out, in, kh, kw) and "{name}.bias" (out).</summary>
internal sealed class Conv2dLayer
{
    public Conv2dGeometry Geometry { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }

    public Conv2dLayer(string name, Conv2dGeometry geometry)
    {
        Geometry = geometry;
        Weight = new Parameter(name + ".weight", geometry.WeightShape, trainable: false);
        Bias = new Parameter(name + ".bias", [geometry.OutChannels], trainable: false);
    }

    public IEnumerable<Parameter> Parameters => [Weight, Bias];

    /// <summary>x (in, H, W) -> y (out, OH, OW); y is reshaped to fit and must not alias x.</summary>
    public void Forward(Tensor x, int height, int width, Tensor y, Conv2dWorkspace workspace)
    {
        y.EnsureShape(Geometry.OutChannels, Geometry.OutputHeight(height), Geometry.OutputWidth(width));
        Conv2d.Forward(x, Weight.Value, Bias.Value, y, Geometry, 1, height, width, workspace);
    }

    public long MultiplyAccumulates(int height, int width) => Geometry.MultiplyAccumulates(height, width);
}
