using MediatorDiT.Models;

namespace MediatorDiT.IO;

/// <summary>
/// Builds a network from a weights file: a safetensors state dict (memory-mapped and read tensor by
/// tensor; config in the header's __metadata__ "config" entry, or none) or a PyTorch .pt file (bare
/// state dict or training checkpoint). The config comes from, in order: a JSON file; the metadata; the
/// weights' own shapes (<see cref="ModelConfigInference"/>, the family by <see cref="ModelFamilies.Resolve"/>).
/// F16/BF16/F64 weights are converted to float32.
/// </summary>
public static class ModelFiles
{
    public const string ConfigMetadataKey = "config";

    /// <param name="family">overrides the family of a config, and names it for weights without one</param>
    /// <param name="numHeads">the head count of full-attention weights of a non-standard width without a config</param>
    public static SiTModel Load(string weightsPath, string? configPath = null, string? checkpointKey = null, bool strict = true,
        ModelFamily? family = null, int? numHeads = null)
    {
        if (!File.Exists(weightsPath))
            throw new MediatorDiTException($"weights file '{weightsPath}' does not exist.");
        using var file = OpenStateDict.Open(weightsPath, checkpointKey);
        file.Metadata.TryGetValue(ConfigMetadataKey, out string? embedded);
        return Build(weightsPath, file.Tensors, configPath, embedded, strict, family, numHeads);
    }

    /// <summary>The config <see cref="Load"/> would use for a state dict, without building the network.</summary>
    public static ModelConfig ResolveConfig(string weightsPath, IReadOnlyDictionary<string, StoredTensor> state, string? configPath,
        string? embeddedConfig, ModelFamily? family, int? numHeads)
    {
        ModelConfig config;
        if (configPath is not null)
        {
            if (!File.Exists(configPath)) throw new MediatorDiTException($"config file '{configPath}' does not exist.");
            config = ModelConfig.FromJson(File.ReadAllText(configPath), configPath);
        }
        else if (embeddedConfig is not null)
        {
            config = ModelConfig.FromJson(embeddedConfig, $"{weightsPath} (__metadata__ config)");
        }
        else
        {
            return ModelConfigInference.Infer(state, ModelFamilies.Resolve(weightsPath, family), weightsPath, numHeads);
        }
        return family is ModelFamily f ? config with { Family = f } : config;
    }

    private static SiTModel Build(string weightsPath, IReadOnlyDictionary<string, StoredTensor> state, string? configPath,
        string? embeddedConfig, bool strict, ModelFamily? family, int? numHeads)
    {
        var model = new SiTModel(ResolveConfig(weightsPath, state, configPath, embeddedConfig, family, numHeads));
        StateDict.LoadInto(model, state, strict, weightsPath);
        return model;
    }

    /// <summary>Writes the model's state dict with its config in the safetensors metadata (atomically).</summary>
    public static void Save(SiTModel model, string path)
    {
        SafeTensors.Write(path, StateDict.FromParameters(model),
            new Dictionary<string, string> { [ConfigMetadataKey] = model.Config.ToJson() });
    }

    /// <summary>
    /// A safetensors file starts with an 8-byte header length and then the JSON header's '{'; anything
    /// else goes to <see cref="StateDict.Load"/>, which tells the PyTorch formats apart.
    /// </summary>
    public static bool LooksLikeSafeTensors(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> head = stackalloc byte[9];
        return stream.ReadAtLeast(head, 9, throwOnEndOfStream: false) == 9 && head[8] == (byte)'{';
    }
}
