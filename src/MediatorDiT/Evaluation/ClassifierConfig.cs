using System.Text.Json;
using System.Text.Json.Serialization;
using MediatorDiT.IO;

namespace MediatorDiT.Evaluation;

/// <summary>
/// Shape of the <see cref="ImageClassifier"/>: images (C, S, S) go through one block per entry of
/// <see cref="Widths"/> (3x3 conv with padding 1, ReLU, 2x2 max pool), then a dense layer of
/// <see cref="Hidden"/> units with ReLU (the features the metrics use) and a dense layer to the classes.
/// S must be divisible by 2^blocks. The default suits the built-in datasets as the diffusion models see
/// them (1 x 32 x 32 in [-1, 1]): 188,234 weights, 0.75 MB of float32.
/// </summary>
public sealed record ClassifierConfig
{
    /// <summary>Side S of the square input images.</summary>
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 32;
    /// <summary>Channels C of the input images.</summary>
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 1;
    /// <summary>Output channels of each conv block, first block first.</summary>
    [JsonPropertyName("widths")] public int[] Widths { get; init; } = [32, 64, 64];
    /// <summary>Units of the hidden dense layer: the feature dimension of FID and precision/recall.</summary>
    [JsonPropertyName("hidden")] public int Hidden { get; init; } = 128;
    /// <summary>Classes of the output layer, at least 2.</summary>
    [JsonPropertyName("num_classes")] public int NumClasses { get; init; } = 10;

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    /// <summary>Side of the feature map after the last pool.</summary>
    [JsonIgnore] public int FinalSize => ImageSize >> Widths.Length;

    /// <summary>Inputs of the first dense layer: last width x FinalSize^2.</summary>
    [JsonIgnore] public int FlatFeatures => Widths[^1] * FinalSize * FinalSize;

    /// <summary>Returns this config, or throws a <see cref="MediatorDiTException"/> naming the first impossible value.</summary>
    public ClassifierConfig Validate()
    {
        if (Widths is null || Widths.Length == 0 || Widths.Any(w => w <= 0))
            throw new MediatorDiTException($"the classifier's widths must be a non-empty list of positive channel counts, got [{string.Join(", ", Widths ?? [])}].");
        if (InChannels <= 0 || Hidden <= 0 || NumClasses < 2)
            throw new MediatorDiTException($"the classifier needs positive in_channels and hidden and at least 2 classes, got {InChannels}, {Hidden}, {NumClasses}.");
        if (ImageSize <= 0 || ImageSize % (1 << Widths.Length) != 0)
            throw new MediatorDiTException($"the classifier's image_size {ImageSize} must be a positive multiple of 2^{Widths.Length} (one halving per block).");
        return this;
    }

    /// <summary>The config as compact JSON with snake_case names, as classifier files store it.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads and validates a config written by <see cref="ToJson"/>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="source">Where the text came from, for messages.</param>
    /// <exception cref="MediatorDiTException">The text is not valid JSON, is empty, or fails <see cref="Validate"/>.</exception>
    public static ClassifierConfig FromJson(string json, string source)
    {
        return ConfigJson.Read<ClassifierConfig>(json, source, "classifier config", JsonOptions).Validate();
    }
}
