using System.Text.Json;
using System.Text.Json.Serialization;
using MediatorDiT.IO;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// The hyper-parameters of diffusers' AutoencoderKL, with the JSON names of its config.json. The defaults
/// are those of the Stable Diffusion VAE that DiT uses (sd-vae-ft-ema / sd-vae-ft-mse): 3 -> 4 latent
/// channels, block_out_channels [128, 256, 512, 512], two resnets per encoder block, 32 norm groups.
/// </summary>
public sealed record AutoencoderKlConfig
{
    /// <summary>Image channels the encoder reads (3).</summary>
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 3;
    /// <summary>Image channels the decoder writes (3).</summary>
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 3;
    /// <summary>Channels of each resolution level, finest first; each must be a multiple of <see cref="NormNumGroups"/>. Their count sets <see cref="DownsampleFactor"/>.</summary>
    [JsonPropertyName("block_out_channels")] public int[] BlockOutChannels { get; init; } = [128, 256, 512, 512];
    /// <summary>Resnet blocks per encoder level (the decoder has one more per level, as in diffusers).</summary>
    [JsonPropertyName("layers_per_block")] public int LayersPerBlock { get; init; } = 2;
    /// <summary>Channels of the latent (4).</summary>
    [JsonPropertyName("latent_channels")] public int LatentChannels { get; init; } = 4;
    /// <summary>Groups of every GroupNorm (32).</summary>
    [JsonPropertyName("norm_num_groups")] public int NormNumGroups { get; init; } = 32;
    /// <summary>The image size the VAE was trained at, in pixels; informational (any multiple of the downsampling factor is accepted).</summary>
    [JsonPropertyName("sample_size")] public int SampleSize { get; init; } = 256;
    /// <summary>The activation; only "silu" (or its alias "swish") is supported.</summary>
    [JsonPropertyName("act_fn")] public string ActFn { get; init; } = "silu";
    /// <summary>The latent scale the pipeline applies (0.18215 for the SD VAE); not used by the network itself.</summary>
    [JsonPropertyName("scaling_factor")] public double ScalingFactor { get; init; } = 0.18215;
    /// <summary>Only DownEncoderBlock2D is supported; null (absent) means all of them.</summary>
    [JsonPropertyName("down_block_types")] public string[]? DownBlockTypes { get; init; }
    /// <summary>Only UpDecoderBlock2D is supported; null (absent) means all of them.</summary>
    [JsonPropertyName("up_block_types")] public string[]? UpBlockTypes { get; init; }

    /// <summary>The Stable Diffusion VAE (the defaults).</summary>
    public static AutoencoderKlConfig StableDiffusion { get; } = new();

    /// <summary>Image size / latent size: 2^(blocks - 1), 8 for the SD VAE.</summary>
    [JsonIgnore] public int DownsampleFactor => 1 << (BlockOutChannels.Length - 1);

    /// <summary>One phrase naming the fields that decide parameter shapes, for error messages.</summary>
    [JsonIgnore]
    public string Summary =>
        $"in_channels {InChannels}, out_channels {OutChannels}, block_out_channels [{string.Join(", ", BlockOutChannels)}], " +
        $"layers_per_block {LayersPerBlock}, latent_channels {LatentChannels}";

    /// <summary>Throws a <see cref="MediatorDiTException"/> naming the first inconsistent field.</summary>
    public AutoencoderKlConfig Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok) throw new MediatorDiTException(message);
        }
        Require(InChannels > 0 && OutChannels > 0, $"VAE in_channels and out_channels must be positive, got {InChannels} and {OutChannels}.");
        Require(BlockOutChannels is { Length: > 0 }, "VAE block_out_channels must list at least one block.");
        Require(NormNumGroups > 0, $"VAE norm_num_groups must be positive, got {NormNumGroups}.");
        foreach (int c in BlockOutChannels)
            Require(c > 0 && c % NormNumGroups == 0,
                $"VAE block_out_channels [{string.Join(", ", BlockOutChannels)}] must be positive multiples of norm_num_groups {NormNumGroups}.");
        Require(LayersPerBlock > 0, $"VAE layers_per_block must be positive, got {LayersPerBlock}.");
        Require(LatentChannels > 0, $"VAE latent_channels must be positive, got {LatentChannels}.");
        Require(ScalingFactor > 0 && double.IsFinite(ScalingFactor), $"VAE scaling_factor must be a positive number, got {ScalingFactor}.");
        Require(string.Equals(ActFn, "silu", StringComparison.OrdinalIgnoreCase) || string.Equals(ActFn, "swish", StringComparison.OrdinalIgnoreCase),
            $"VAE act_fn '{ActFn}' is not supported; expected 'silu'.");
        CheckBlockTypes(DownBlockTypes, "down_block_types", "DownEncoderBlock2D");
        CheckBlockTypes(UpBlockTypes, "up_block_types", "UpDecoderBlock2D");
        return this;
    }

    private void CheckBlockTypes(string[]? types, string field, string supported)
    {
        if (types is null) return;
        if (types.Length != BlockOutChannels.Length)
            throw new MediatorDiTException($"VAE {field} lists {types.Length} blocks but block_out_channels lists {BlockOutChannels.Length}.");
        foreach (string t in types)
            if (t != supported)
                throw new MediatorDiTException($"VAE {field} entry '{t}' is not supported; expected '{supported}'.");
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    /// <summary>The config as one line of JSON with diffusers' field names (the form <see cref="FromJson"/> reads).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads a diffusers config.json (unknown keys such as _class_name or scaling_factor are ignored).</summary>
    public static AutoencoderKlConfig FromJson(string json, string source)
    {
        return ConfigJson.Read<AutoencoderKlConfig>(json, source, "VAE config", JsonOptions);
    }
}
