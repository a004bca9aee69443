using MediatorDiT.IO;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// Reads an AutoencoderKL config off a state dict's shapes, for weights that come without a config.json
/// (a bare diffusion_pytorch_model.safetensors or .bin): in_channels from encoder.conv_in (c0, in, 3, 3);
/// block_out_channels from each encoder.down_blocks.i.resnets.0.conv1 (c_i, ., 3, 3); layers_per_block
/// from the resnets of down block 0; latent_channels from post_quant_conv (L, L, 1, 1); out_channels from
/// decoder.conv_out (out, c0, 3, 3). norm_num_groups is not visible in any shape and stays 32, the value
/// of every released Stable Diffusion VAE. Keys under either diffusers naming scheme.
/// </summary>
internal static class VaeConfigInference
{
    public static AutoencoderKlConfig Infer(IReadOnlyDictionary<string, StoredTensor> state, string source)
    {
        int[] convIn = Require(state, "encoder.conv_in.weight", 4, source);
        var blocks = new List<int>();
        while (state.TryGetValue($"encoder.down_blocks.{blocks.Count}.resnets.0.conv1.weight", out var conv))
            blocks.Add(CheckRank(conv, $"encoder.down_blocks.{blocks.Count}.resnets.0.conv1.weight", 4, source)[0]);
        if (blocks.Count == 0)
            throw new MediatorDiTException($"{source}: has no 'encoder.down_blocks.0.resnets.0.conv1.weight', so its block_out_channels cannot be read; expected a diffusers AutoencoderKL state dict.");
        int layers = 0;
        while (state.ContainsKey($"encoder.down_blocks.0.resnets.{layers}.conv1.weight")) layers++;
        int[] postQuant = Require(state, "post_quant_conv.weight", 4, source);
        int[] convOut = Require(state, "decoder.conv_out.weight", 4, source);
        return new AutoencoderKlConfig
        {
            InChannels = convIn[1],
            OutChannels = convOut[0],
            BlockOutChannels = [.. blocks],
            LayersPerBlock = layers,
            LatentChannels = postQuant[0],
        };
    }

    private static int[] Require(IReadOnlyDictionary<string, StoredTensor> state, string key, int rank, string source) =>
        state.TryGetValue(key, out var tensor) ? CheckRank(tensor, key, rank, source)
            : throw new MediatorDiTException($"{source}: has no '{key}', so the VAE config cannot be read from its shapes; expected a diffusers AutoencoderKL state dict (or pass its config.json).");

    private static int[] CheckRank(StoredTensor tensor, string key, int rank, string source) =>
        tensor.Shape.Length == rank ? tensor.Shape
            : throw new MediatorDiTException($"{source}: key '{key}' has shape [{tensor.ShapeString}] but a convolution weight of {rank} axes was expected.");
}
