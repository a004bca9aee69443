using MediatorDiT.IO;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// Builds an <see cref="AutoencoderKl"/> from a weights file: a diffusers safetensors file
/// (diffusion_pytorch_model.safetensors) or a PyTorch state dict (.bin / .pt), under either naming scheme.
/// The config comes from, in order: <c>configPath</c>; the safetensors header's __metadata__ "config";
/// a config.json beside the weights (the diffusers folder layout); otherwise the weights' own shapes
/// (<see cref="VaeConfigInference"/>). Tensors are read one at a time from the file (safetensors memory-mapped, .pt/.bin from the zip).
/// </summary>
public static class VaeFiles
{
    /// <summary>The safetensors __metadata__ entry that holds the config JSON.</summary>
    public const string ConfigMetadataKey = "config";
    /// <summary>The name of the config file beside the weights in a diffusers folder.</summary>
    public const string DiffusersConfigName = "config.json";

    /// <summary>
    /// The VAE in <paramref name="weightsPath"/>, its config from <paramref name="configPath"/> when given (else
    /// as the class summary says). Throws a <see cref="MediatorDiTException"/> when a file is missing or the
    /// weights do not fit the config (strict: every key must match a parameter).
    /// </summary>
    public static AutoencoderKl Load(string weightsPath, string? configPath = null)
    {
        if (!File.Exists(weightsPath))
            throw new MediatorDiTException($"VAE weights file '{weightsPath}' does not exist.");
        using var file = OpenStateDict.Open(weightsPath);
        file.Metadata.TryGetValue(ConfigMetadataKey, out string? embeddedConfig);
        return Build(weightsPath, configPath, file.Tensors, embeddedConfig);
    }

    private static AutoencoderKl Build(string weightsPath, string? configPath, IReadOnlyDictionary<string, StoredTensor> state, string? embeddedConfig)
    {
        AutoencoderKlConfig config;
        if (configPath is not null)
        {
            if (!File.Exists(configPath)) throw new MediatorDiTException($"VAE config file '{configPath}' does not exist.");
            config = AutoencoderKlConfig.FromJson(File.ReadAllText(configPath), configPath);
        }
        else if (embeddedConfig is not null)
        {
            config = AutoencoderKlConfig.FromJson(embeddedConfig, $"{weightsPath} (__metadata__ config)");
        }
        else
        {
            string beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(weightsPath)) ?? ".", DiffusersConfigName);
            config = File.Exists(beside)
                ? AutoencoderKlConfig.FromJson(File.ReadAllText(beside), beside)
                : VaeConfigInference.Infer(state, weightsPath);
        }

        var vae = new AutoencoderKl(config);
        vae.LoadStateDict(state, weightsPath);
        return vae;
    }
}
