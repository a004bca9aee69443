using MediatorDiT.Models.Vae;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Vae;

/// <summary>Images whose VAE activations cannot fit one array are refused up front (they used to end in 'tensor too large for one array').</summary>
public class VaeSizeLimitTests
{
    [Fact]
    public void EncodingImagesWhoseMidBlockAttentionWouldNotFitIsRefused()
    {
        var vae = VaeFiles.Load(Fixtures.PathOf("vae.weights.safetensors"));
        int f = vae.Config.DownsampleFactor, side = 512;
        long positions = (long)(side / f) * (side / f);
        var e = Assert.Throws<MediatorDiTException>(() => vae.Encode(new Tensor(1, 3, side, side)));
        Assert.Equal($"VAE images of {side}x{side} pixels are too large: the mid-block attention over the {side / f}x{side / f} latent would need {positions * positions} scores, more than one array holds; use smaller images.", e.Message);
        var d = Assert.Throws<MediatorDiTException>(() => vae.Decode(new Tensor(1, vae.Config.LatentChannels, side / f, side / f)));
        Assert.StartsWith($"VAE latents of {side}x{side} pixels are too large", d.Message);
    }
}
