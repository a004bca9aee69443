using MediatorDiT.Nn;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// diffusers' Upsample2D as the VAE decoder uses it: nearest-neighbour 2x upsampling, then a 3x3 conv
/// "{name}.conv" with padding 1. (C, H, W) -> (C, 2H, 2W).
/// </summary>
internal sealed class Upsample2D
{
    public Conv2dLayer Conv { get; }

    public Upsample2D(string name, int channels)
    {
        Conv = new Conv2dLayer(name + ".conv", Conv2dGeometry.Square(channels, channels, 3, 1, 1));
    }

    public IEnumerable<Parameter> Parameters => Conv.Parameters;

    /// <summary>ws.Current (C, H, W) -> ws.Next (C, 2H, 2W), the upsampled map held in ws.T1.</summary>
    public void Forward(VaeWorkspace ws, int height, int width)
    {
        int c = Conv.Geometry.InChannels;
        ws.T1.EnsureShape(c, 2 * height, 2 * width);
        NearestUpsample2x.Forward(ws.Current.Span, ws.T1.Span, c, height, width);
        Conv.Forward(ws.T1, 2 * height, 2 * width, ws.Next, ws.Conv);
    }

    public long MultiplyAccumulates(int height, int width) => Conv.MultiplyAccumulates(2 * height, 2 * width);
}
