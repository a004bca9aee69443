using MediatorDiT.Nn;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// diffusers' VAE Decoder ("decoder."): conv_in (latent -> c_last); the mid block; one UpDecoderBlock2D per
/// entry of reversed block_out_channels ("up_blocks.i": layers_per_block + 1 resnets, then an Upsample2D
/// except in the last block); conv_norm_out + SiLU; conv_out to the image channels.
/// </summary>
internal sealed class VaeDecoder
{
    public AutoencoderKlConfig Config { get; }
    public Conv2dLayer ConvIn { get; }
    public VaeMidBlock MidBlock { get; }
    public IReadOnlyList<IReadOnlyList<ResnetBlock2D>> UpResnets { get; }
    /// <summary>One per block; null for the last.</summary>
    public IReadOnlyList<Upsample2D?> Upsamplers { get; }
    public GroupNormLayer NormOut { get; }
    public Conv2dLayer ConvOut { get; }

    public VaeDecoder(AutoencoderKlConfig config, string name = "decoder")
    {
        Config = config;
        int[] reversed = config.BlockOutChannels.Reverse().ToArray();
        int groups = config.NormNumGroups, blocks = reversed.Length;
        ConvIn = new Conv2dLayer(name + ".conv_in", Conv2dGeometry.Square(config.LatentChannels, reversed[0], 3, 1, 1));
        MidBlock = new VaeMidBlock(name + ".mid_block", reversed[0], groups);
        var resnets = new List<IReadOnlyList<ResnetBlock2D>>();
        var ups = new List<Upsample2D?>();
        int previous = reversed[0];
        for (int b = 0; b < blocks; b++)
        {
            string block = $"{name}.up_blocks.{b}";
            resnets.Add(Enumerable.Range(0, config.LayersPerBlock + 1)
                .Select(i => new ResnetBlock2D($"{block}.resnets.{i}", i == 0 ? previous : reversed[b], reversed[b], groups)).ToArray());
            ups.Add(b < blocks - 1 ? new Upsample2D($"{block}.upsamplers.0", reversed[b]) : null);
            previous = reversed[b];
        }
        UpResnets = resnets;
        Upsamplers = ups;
        NormOut = new GroupNormLayer(name + ".conv_norm_out", reversed[^1], groups);
        ConvOut = new Conv2dLayer(name + ".conv_out", Conv2dGeometry.Square(reversed[^1], config.OutChannels, 3, 1, 1));
    }

    /// <summary>PyTorch's order: conv_in, up_blocks (registered before mid_block), mid_block, conv_norm_out, conv_out.</summary>
    public IEnumerable<Parameter> Parameters
    {
        get
        {
            IEnumerable<Parameter> all = ConvIn.Parameters;
            for (int b = 0; b < UpResnets.Count; b++)
                all = all.Concat(UpResnets[b].SelectMany(r => r.Parameters)).Concat(Upsamplers[b]?.Parameters ?? []);
            return all.Concat(MidBlock.Parameters).Concat(NormOut.Parameters).Concat(ConvOut.Parameters);
        }
    }

    /// <summary>ws.Current (latent, h, w) -> ws.Current (out, h * f, w * f). Returns the output size.</summary>
    public (int Height, int Width) Forward(VaeWorkspace ws, int height, int width, CancellationToken cancellationToken = default)
    {
        ConvIn.Forward(ws.Current, height, width, ws.Next, ws.Conv);
        ws.Swap();
        MidBlock.Forward(ws, height, width);
        ws.Swap();
        for (int b = 0; b < UpResnets.Count; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var resnet in UpResnets[b])
            {
                resnet.Forward(ws, height, width);
                ws.Swap();
            }
            if (Upsamplers[b] is { } up)
            {
                up.Forward(ws, height, width);
                ws.Swap();
                (height, width) = (2 * height, 2 * width);
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        NormOut.Forward(ws.Current, height, width, ws.Current, silu: true);
        ConvOut.Forward(ws.Current, height, width, ws.Next, ws.Conv);
        ws.Swap();
        return (height, width);
    }

    /// <summary>The convolutions' multiply-accumulates, plus the mid attention's when <paramref name="includeAttention"/>.</summary>
    public long MultiplyAccumulates(int height, int width, bool includeAttention = true)
    {
        long macs = ConvIn.MultiplyAccumulates(height, width) + MidBlock.MultiplyAccumulates(height, width, includeAttention);
        for (int b = 0; b < UpResnets.Count; b++)
        {
            foreach (var resnet in UpResnets[b]) macs += resnet.MultiplyAccumulates(height, width);
            if (Upsamplers[b] is { } up)
            {
                macs += up.MultiplyAccumulates(height, width);
                (height, width) = (2 * height, 2 * width);
            }
        }
        return macs + ConvOut.MultiplyAccumulates(height, width);
    }
}
