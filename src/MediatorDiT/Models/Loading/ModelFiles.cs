using MediatorDiT.IO;

namespace MediatorDiT.Models;

/// <summary>
/// Builds a network from a weights file: a safetensors state dict (memory-mapped and read tensor by
/// tensor; config in the header's __metadata__ "config" entry, or none) or a PyTorch .pt file (bare
/// state dict or training checkpoint). The config comes from, in order: a JSON file; the metadata; the
/// weights' own shapes (<see cref="ModelConfigInference"/>, the family by <see cref="ModelFamilies.Resolve"/>).
/// F16/BF16/F64 weights are converted to float32.
/// </summary>
public static class ModelFiles
{
    /// <summary>The safetensors __metadata__ entry that holds the model config JSON.</summary>
    public const string ConfigMetadataKey = "config";

    /// <summary>
    /// The network in <paramref name="weightsPath"/> with its weights loaded (float32). Throws a
    /// <see cref="MediatorDiTException"/> when a file is missing, no config can be found, or the config
    /// does not describe the weights.
    /// </summary>
    /// <param name="weightsPath">a .safetensors file or a PyTorch .pt/.pth file</param>
    /// <param name="configPath">a JSON config (<see cref="ModelConfig"/>), which takes precedence over the file's own</param>
    /// <param name="checkpointKey">the entry of a PyTorch training checkpoint to load ("ema", "model"); null picks "ema", else "model", else "state_dict"</param>
    /// <param name="strict">when true, a missing, unexpected or mis-shaped key is an error; when false, what matches is loaded</param>
    /// <param name="family">overrides the family of a config, and names it for weights without one</param>
    /// <param name="numHeads">the head count of full-attention weights of a non-standard width without a config</param>
    public static SiTModel Load(string weightsPath, string? configPath = null, string? checkpointKey = null, bool strict = true,
        ModelFamily? family = null, int? numHeads = null)
    {
        if (!File.Exists(weightsPath))
            throw new MediatorDiTException($"weights file '{weightsPath}' does not exist.");
        using var file = OpenStateDict.Open(weightsPath, checkpointKey);
        // A run checkpoint holds "model.*", "ema.*" and optimizer tensors (and, for a shared ladder, every
        // count's biases): name the command that turns it into weights rather than list 500 unknown keys.
        if (file.Metadata.TryGetValue("format", out string? format) && format == Training.TrainingCheckpoint.Format)
            throw new MediatorDiTException($"{weightsPath} is a training checkpoint of `mdit train` (network, EMA and optimizer state), not a model's weights: write its weights with `mdit export {weightsPath}` (the EMA weights; `--weights model` for the raw ones) and load the file it writes.");
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
        ModelConfig config = ResolveConfig(weightsPath, state, configPath, embeddedConfig, family, numHeads).Validate();
        CheckSizes(config, state, strict, weightsPath);
        var model = new SiTModel(config);
        StateDict.LoadInto(model, state, strict, weightsPath);
        return model;
    }

    /// <summary>
    /// Compares the sizes that decide how much the network allocates (width, depth, classes, MLP, tokens,
    /// mediators) with the weights that are there, so a config that does not describe them (a corrupt or
    /// hostile one saying hidden_size 40000) fails in one sentence before gigabytes are allocated.
    /// </summary>
    private static void CheckSizes(ModelConfig config, IReadOnlyDictionary<string, StoredTensor> state, bool strict, string source)
    {
        void Expect(string key, string field, Func<int[], bool> matches)
        {
            if (state.TryGetValue(key, out StoredTensor? tensor) && !matches(tensor.Shape))
                throw new MediatorDiTException($"{source}: the config ({field}) does not fit '{key}', which has shape [{tensor.ShapeString}], so it does not describe these weights.");
        }
        Expect("x_embedder.proj.weight", $"hidden_size {config.HiddenSize}, in_channels {config.InChannels} and patch_size {config.PatchSize}",
            s => s.Length == 4 && s[0] == config.HiddenSize && s[1] == config.InChannels && s[2] == config.PatchSize && s[3] == config.PatchSize);
        Expect("pos_embed", $"input_size {config.InputSize} ({config.NumTokens} tokens)", s => s.Length == 3 && s[1] == config.NumTokens);
        Expect("y_embedder.embedding_table.weight", $"num_classes {config.NumClasses}",
            s => s.Length == 2 && (s[0] == config.NumClasses || s[0] == config.NumClasses + 1));
        Expect("blocks.0.mlp.fc1.weight", $"mlp_ratio {config.MlpRatio} (an MLP of {config.MlpHidden})", s => s.Length == 2 && s[0] == config.MlpHidden);
        foreach (var (key, fields, fits) in AttentionKinds.For(config).ExpectedShapes(config))
            Expect(key, fields, fits);
        int depth = 0;
        while (state.ContainsKey($"blocks.{depth}.mlp.fc1.weight")) depth++;
        if (strict && depth > 0 && depth != config.Depth)
            throw new MediatorDiTException($"{source}: the config (depth {config.Depth}) does not fit the weights, which hold {depth} blocks, so it does not describe these weights.");
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
