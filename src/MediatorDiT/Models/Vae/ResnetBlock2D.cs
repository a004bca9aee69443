using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// diffusers' ResnetBlock2D without a time embedding (the VAE's): h = conv1(silu(norm1(x))),
/// h = conv2(silu(norm2(h))) (dropout is a no-op at inference), out = shortcut(x) + h with a 1x1
/// conv_shortcut when the channel count changes. output_scale_factor is 1.
/// </summary>
internal sealed class ResnetBlock2D
{
    public int InChannels { get; }
    public int OutChannels { get; }
    public GroupNormLayer Norm1 { get; }
    public Conv2dLayer Conv1 { get; }
    public GroupNormLayer Norm2 { get; }
    public Conv2dLayer Conv2 { get; }
    public Conv2dLayer? ConvShortcut { get; }

    public ResnetBlock2D(string name, int inChannels, int outChannels, int groups)
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        Norm1 = new GroupNormLayer(name + ".norm1", inChannels, groups);
        Conv1 = new Conv2dLayer(name + ".conv1", Conv2dGeometry.Square(inChannels, outChannels, 3, 1, 1));
        Norm2 = new GroupNormLayer(name + ".norm2", outChannels, groups);
        Conv2 = new Conv2dLayer(name + ".conv2", Conv2dGeometry.Square(outChannels, outChannels, 3, 1, 1));
        if (inChannels != outChannels)
            ConvShortcut = new Conv2dLayer(name + ".conv_shortcut", Conv2dGeometry.Square(inChannels, outChannels, 1));
    }

    /// <summary>PyTorch's registration order: norm1, conv1, norm2, conv2, conv_shortcut.</summary>
    public IEnumerable<Parameter> Parameters =>
        [.. Norm1.Parameters, .. Conv1.Parameters, .. Norm2.Parameters, .. Conv2.Parameters, .. ConvShortcut?.Parameters ?? []];

    /// <summary>ws.Current (in, H, W) -> ws.Next (out, H, W), using ws.T1 and ws.T2.</summary>
    public void Forward(VaeWorkspace ws, int height, int width)
    {
        Tensor x = ws.Current, y = ws.Next;
        Norm1.Forward(x, height, width, ws.T1, silu: true);
        Conv1.Forward(ws.T1, height, width, ws.T2, ws.Conv);
        Norm2.Forward(ws.T2, height, width, ws.T1, silu: true);
        Conv2.Forward(ws.T1, height, width, y, ws.Conv);
        if (ConvShortcut is not null)
        {
            ConvShortcut.Forward(x, height, width, ws.T2, ws.Conv);
            TensorPrimitives.Add(y.Span, ws.T2.Span, y.Span);
        }
        else
        {
            TensorPrimitives.Add(y.Span, x.Span[..y.Length], y.Span);
        }
    }

    public long MultiplyAccumulates(int height, int width) =>
        Conv1.MultiplyAccumulates(height, width) + Conv2.MultiplyAccumulates(height, width) +
        (ConvShortcut?.MultiplyAccumulates(height, width) ?? 0);
}
