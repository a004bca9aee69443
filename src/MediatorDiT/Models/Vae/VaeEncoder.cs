using MediatorDiT.Nn;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// diffusers' VAE Encoder ("encoder."): conv_in (in -> c0); one DownEncoderBlock2D per entry of
/// block_out_channels ("down_blocks.i": layers_per_block resnets, then a Downsample2D except in the last
/// block); the mid block; conv_norm_out + SiLU; conv_out to 2 * latent channels (mean and log-variance).
/// </summary>
internal sealed class VaeEncoder
{
    public AutoencoderKlConfig Config { get; }
    public Conv2dLayer ConvIn { get; }
    public IReadOnlyList<IReadOnlyList<ResnetBlock2D>> DownResnets { get; }
    /// <summary>One per block; null for the last.</summary>
    public IReadOnlyList<Downsample2D?> Downsamplers { get; }
    public VaeMidBlock MidBlock { get; }
    public GroupNormLayer NormOut { get; }
    public Conv2dLayer ConvOut { get; }

    public VaeEncoder(AutoencoderKlConfig config, string name = "encoder")
    {
        Config = config;
        int[] ch = config.BlockOutChannels;
        int groups = config.NormNumGroups, blocks = ch.Length;
        ConvIn = new Conv2dLayer(name + ".conv_in", Conv2dGeometry.Square(config.InChannels, ch[0], 3, 1, 1));
        var resnets = new List<IReadOnlyList<ResnetBlock2D>>();
        var downs = new List<Downsample2D?>();
        int previous = ch[0];
        for (int b = 0; b < blocks; b++)
        {
            string block = $"{name}.down_blocks.{b}";
            resnets.Add(Enumerable.Range(0, config.LayersPerBlock)
                .Select(i => new ResnetBlock2D($"{block}.resnets.{i}", i == 0 ? previous : ch[b], ch[b], groups)).ToArray());
            downs.Add(b < blocks - 1 ? new Downsample2D($"{block}.downsamplers.0", ch[b]) : null);
            previous = ch[b];
        }
        DownResnets = resnets;
        Downsamplers = downs;
        MidBlock = new VaeMidBlock(name + ".mid_block", ch[^1], groups);
        NormOut = new GroupNormLayer(name + ".conv_norm_out", ch[^1], groups);
        ConvOut = new Conv2dLayer(name + ".conv_out", Conv2dGeometry.Square(ch[^1], 2 * config.LatentChannels, 3, 1, 1));
    }

    /// <summary>PyTorch's order: conv_in, down_blocks (resnets, downsamplers), mid_block, conv_norm_out, conv_out.</summary>
    public IEnumerable<Parameter> Parameters
    {
        get
        {
            IEnumerable<Parameter> all = ConvIn.Parameters;
            for (int b = 0; b < DownResnets.Count; b++)
                all = all.Concat(DownResnets[b].SelectMany(r => r.Parameters)).Concat(Downsamplers[b]?.Parameters ?? []);
            return all.Concat(MidBlock.Parameters).Concat(NormOut.Parameters).Concat(ConvOut.Parameters);
        }
    }

    /// <summary>
    /// ws.Current (in, H, W) -> ws.Current (2 * latent, H / f, W / f). Returns the output size.
    /// </summary>
    public (int Height, int Width) Forward(VaeWorkspace ws, int height, int width, CancellationToken cancellationToken = default)
    {
        ConvIn.Forward(ws.Current, height, width, ws.Next, ws.Conv);
        ws.Swap();
        for (int b = 0; b < DownResnets.Count; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var resnet in DownResnets[b])
            {
                resnet.Forward(ws, height, width);
                ws.Swap();
            }
            if (Downsamplers[b] is { } down)
            {
                down.Forward(ws, height, width);
                ws.Swap();
                (height, width) = (down.OutputSize(height), down.OutputSize(width));
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        MidBlock.Forward(ws, height, width);
        ws.Swap();
        NormOut.Forward(ws.Current, height, width, ws.Current, silu: true);
        ConvOut.Forward(ws.Current, height, width, ws.Next, ws.Conv);
        ws.Swap();
        return (height, width);
    }

    /// <summary>The convolutions' multiply-accumulates, plus the mid attention's when <paramref name="includeAttention"/>.</summary>
    public long MultiplyAccumulates(int height, int width, bool includeAttention = true)
    {
        long macs = ConvIn.MultiplyAccumulates(height, width);
        for (int b = 0; b < DownResnets.Count; b++)
        {
            foreach (var resnet in DownResnets[b]) macs += resnet.MultiplyAccumulates(height, width);
            if (Downsamplers[b] is { } down)
            {
                macs += down.MultiplyAccumulates(height, width);
                (height, width) = (down.OutputSize(height), down.OutputSize(width));
            }
        }
        return macs + MidBlock.MultiplyAccumulates(height, width, includeAttention) + ConvOut.MultiplyAccumulates(height, width);
    }
}
