using MediatorDiT.Models;

namespace MediatorDiT.IO;

/// <summary>
/// Builds a network from a weights file: a safetensors state dict (config in the header's
/// __metadata__ "config" entry) or a PyTorch .pt file (bare state dict or training checkpoint),
/// with the config from a JSON file when the weights do not carry one.
/// </summary>
public static class ModelFiles
{
    public const string ConfigMetadataKey = "config";

    public static SiTModel Load(string weightsPath, string? configPath = null, string? checkpointKey = null, bool strict = true)
    {
        if (!File.Exists(weightsPath))
            throw new MediatorDiTException($"weights file '{weightsPath}' does not exist.");
        IReadOnlyDictionary<string, StoredTensor> state;
        string? embeddedConfig = null;
        if (LooksLikeSafeTensors(weightsPath))
        {
            var file = SafeTensors.Read(weightsPath);
            state = file.Tensors;
            file.Metadata.TryGetValue(ConfigMetadataKey, out embeddedConfig);
        }
        else
        {
            state = StateDict.Load(weightsPath, checkpointKey);
        }

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
            throw new MediatorDiTException(
                $"{weightsPath} carries no model config; pass --config C.json with the model's input_size, patch_size, hidden_size, depth, num_heads, ... (as in the official constructor).");
        }

        var model = new SiTModel(config);
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
