using System.Text.Json;
using System.Text.Json.Serialization;

namespace MediatorDiT.Models;

/// <summary>
/// The network's hyper-parameters. JSON property names are those of the official code's
/// constructor arguments (and of the fixtures' manifest), so configs can be shared with PyTorch users.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>Height = width of the input grid (latent or pixel), e.g. 32 for 256 px with a /8 VAE.</summary>
    [JsonPropertyName("input_size")] public int InputSize { get; init; } = 32;
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 2;
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 4;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 1152;
    [JsonPropertyName("depth")] public int Depth { get; init; } = 28;
    [JsonPropertyName("num_heads")] public int NumHeads { get; init; } = 16;
    [JsonPropertyName("mlp_ratio")] public double MlpRatio { get; init; } = 4.0;
    [JsonPropertyName("class_dropout_prob")] public double ClassDropoutProb { get; init; } = 0.1;
    [JsonPropertyName("num_classes")] public int NumClasses { get; init; } = 1000;
    [JsonPropertyName("learn_sigma")] public bool LearnSigma { get; init; } = true;
    /// <summary>Number of mediator tokens; must be a perfect square. Ignored for full attention.</summary>
    [JsonPropertyName("mediator_num")] public int MediatorNum { get; init; } = 64;
    [JsonPropertyName("attention")][JsonConverter(typeof(JsonStringEnumConverter<AttentionKind>))]
    public AttentionKind Attention { get; init; } = AttentionKind.Mediator;
    [JsonPropertyName("family")][JsonConverter(typeof(JsonStringEnumConverter<ModelFamily>))]
    public ModelFamily Family { get; init; } = ModelFamily.SiT;

    [JsonIgnore] public int GridSize => InputSize / PatchSize;
    [JsonIgnore] public int NumTokens => GridSize * GridSize;
    [JsonIgnore] public int HeadDim => HiddenSize / NumHeads;
    [JsonIgnore] public int MlpHidden => (int)(HiddenSize * MlpRatio);
    [JsonIgnore] public int OutChannels => LearnSigma ? InChannels * 2 : InChannels;
    [JsonIgnore] public int MediatorGrid => (int)Math.Round(Math.Sqrt(MediatorNum));
    /// <summary>Channels forward() returns: SiT drops the sigma half, DiT returns all of them.</summary>
    [JsonIgnore] public int ReturnedChannels => Family == ModelFamily.DiT ? OutChannels : InChannels;

    /// <summary>Throws a <see cref="MediatorDiTException"/> naming the first inconsistent field.</summary>
    public ModelConfig Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok) throw new MediatorDiTException(message);
        }
        Require(InputSize > 0, $"input_size must be positive, got {InputSize}.");
        Require(PatchSize > 0, $"patch_size must be positive, got {PatchSize}.");
        Require(InputSize % PatchSize == 0,
            $"input_size {InputSize} (image size {InputSize * 8} px for a /8 latent) is not divisible by patch_size {PatchSize}.");
        Require(InChannels > 0, $"in_channels must be positive, got {InChannels}.");
        Require(HiddenSize > 0 && NumHeads > 0 && HiddenSize % NumHeads == 0,
            $"hidden_size {HiddenSize} must be a positive multiple of num_heads {NumHeads}.");
        Require(Depth > 0, $"depth must be positive, got {Depth}.");
        Require(MlpRatio > 0, $"mlp_ratio must be positive, got {MlpRatio}.");
        Require(NumClasses > 0, $"num_classes must be positive, got {NumClasses}.");
        if (Attention == AttentionKind.Mediator)
        {
            int g = MediatorGrid;
            Require(MediatorNum > 0 && g * g == MediatorNum,
                $"mediator_num must be a perfect square (1, 4, 9, 16, 64, ...), got {MediatorNum}.");
        }
        return this;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static ModelConfig FromJson(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<ModelConfig>(json, JsonOptions)
                   ?? throw new MediatorDiTException($"{source}: the model config is empty.");
        }
        catch (JsonException e)
        {
            throw new MediatorDiTException($"{source}: the model config is not valid JSON ({e.Message}).");
        }
    }
}
