using MediatorDiT.Nn;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// diffusers' Downsample2D as the VAE encoder uses it (padding=0): zero-pad one column on the right and
/// one row at the bottom, then a 3x3 stride-2 conv "{name}.conv". (C, H, W) -> (C, ceil(H/2), ceil(W/2))
/// for H, W >= 2; (C, H/2, W/2) for even sizes.
/// </summary>
internal sealed class Downsample2D
{
    public Conv2dLayer Conv { get; }

    public Downsample2D(string name, int channels)
    {
        Conv = new Conv2dLayer(name + ".conv",
            new Conv2dGeometry(channels, channels, 3, 3, StrideH: 2, StrideW: 2, PadTop: 0, PadBottom: 1, PadLeft: 0, PadRight: 1));
    }

    public IEnumerable<Parameter> Parameters => Conv.Parameters;

    public int OutputSize(int size) => Conv.Geometry.OutputHeight(size);

    /// <summary>ws.Current -> ws.Next.</summary>
    public void Forward(VaeWorkspace ws, int height, int width) => Conv.Forward(ws.Current, height, width, ws.Next, ws.Conv);

    public long MultiplyAccumulates(int height, int width) => Conv.MultiplyAccumulates(height, width);
}
