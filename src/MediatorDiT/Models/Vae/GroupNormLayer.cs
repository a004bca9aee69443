using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models.Vae;

/// <summary>An affine nn.GroupNorm: parameters "{name}.weight" and "{name}.bias", both (C).</summary>
internal sealed class GroupNormLayer
{
    public int Channels { get; }
    public int Groups { get; }
    public float Eps { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }

    public GroupNormLayer(string name, int channels, int groups, float eps = GroupNorm.DiffusersEps)
    {
        Channels = channels;
        Groups = groups;
        Eps = eps;
        Weight = new Parameter(name + ".weight", [channels], trainable: false);
        Bias = new Parameter(name + ".bias", [channels], trainable: false);
    }

    public IEnumerable<Parameter> Parameters => [Weight, Bias];

    /// <summary>x (C, H, W) -> y (C, H, W), with SiLU after the affine when <paramref name="silu"/>; y may alias x.</summary>
    public void Forward(Tensor x, int height, int width, Tensor y, bool silu)
    {
        if (!ReferenceEquals(x, y)) y.EnsureShape(Channels, height, width);
        GroupNorm.Forward(x, Weight.Value, Bias.Value, y, 1, Channels, height * width, Groups, Eps, silu);
    }
}
