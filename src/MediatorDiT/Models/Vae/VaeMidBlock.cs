using MediatorDiT.Nn;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// diffusers' UNetMidBlock2D as the VAE uses it ("{name}.attentions.0", "{name}.resnets.0/1"):
/// resnet, single-head attention, resnet, all at the same width.
/// </summary>
internal sealed class VaeMidBlock
{
    public VaeAttention Attention { get; }
    public ResnetBlock2D Resnet0 { get; }
    public ResnetBlock2D Resnet1 { get; }

    public VaeMidBlock(string name, int channels, int groups)
    {
        Attention = new VaeAttention(name + ".attentions.0", channels, groups);
        Resnet0 = new ResnetBlock2D(name + ".resnets.0", channels, channels, groups);
        Resnet1 = new ResnetBlock2D(name + ".resnets.1", channels, channels, groups);
    }

    /// <summary>PyTorch registers the attentions before the resnets.</summary>
    public IEnumerable<Parameter> Parameters => [.. Attention.Parameters, .. Resnet0.Parameters, .. Resnet1.Parameters];

    /// <summary>ws.Current -> ws.Next (the stages swap in between).</summary>
    public void Forward(VaeWorkspace ws, int height, int width)
    {
        Resnet0.Forward(ws, height, width);
        ws.Swap();
        Attention.Forward(ws, height, width);
        ws.Swap();
        Resnet1.Forward(ws, height, width);
    }

    /// <summary>The convolutions' multiply-accumulates, plus the attention's when <paramref name="includeAttention"/>.</summary>
    public long MultiplyAccumulates(int height, int width, bool includeAttention = true) =>
        Resnet0.MultiplyAccumulates(height, width) + Resnet1.MultiplyAccumulates(height, width) +
        (includeAttention ? Attention.MultiplyAccumulates(height, width) : 0);
}
