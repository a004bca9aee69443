using System.Text.Json;
using System.Text.Json.Serialization;
using MediatorDiT.IO;

namespace MediatorDiT.Models;

/// <summary>
/// The network's hyper-parameters. JSON property names are those of the official code's
/// constructor arguments (and of the fixtures' manifest), so configs can be shared with PyTorch users.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>Height = width of the input grid (latent or pixel), e.g. 32 for 256 px with a /8 VAE.</summary>
    [JsonPropertyName("input_size")] public int InputSize { get; init; } = 32;
    /// <summary>Side of the square patch each token covers, in grid cells (2 for SiT-XL/2).</summary>
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 2;
    /// <summary>Channels of the input grid: 4 for a Stable Diffusion VAE latent, 1 or 3 for pixels.</summary>
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 4;
    /// <summary>Token width D (1152 for XL).</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 1152;
    /// <summary>Number of transformer blocks (28 for XL).</summary>
    [JsonPropertyName("depth")] public int Depth { get; init; } = 28;
    /// <summary>Attention heads per block; must divide <see cref="HiddenSize"/>.</summary>
    [JsonPropertyName("num_heads")] public int NumHeads { get; init; } = 16;
    /// <summary>MLP hidden width over <see cref="HiddenSize"/> (4.0).</summary>
    [JsonPropertyName("mlp_ratio")] public double MlpRatio { get; init; } = 4.0;
    /// <summary>Probability of replacing a label by the null class during training (for classifier-free guidance); in [0, 1].</summary>
    [JsonPropertyName("class_dropout_prob")] public double ClassDropoutProb { get; init; } = 0.1;
    /// <summary>Number of class labels; the label table has one more row, the null class.</summary>
    [JsonPropertyName("num_classes")] public int NumClasses { get; init; } = 1000;
    /// <summary>Whether the output layer also predicts the variance (2 x <see cref="InChannels"/> output channels).</summary>
    [JsonPropertyName("learn_sigma")] public bool LearnSigma { get; init; } = true;
    /// <summary>Number of mediator tokens; must be a perfect square. Ignored by kinds without mediators (full attention).</summary>
    [JsonPropertyName("mediator_num")] public int MediatorNum { get; init; } = 64;
    /// <summary>The blocks' attention module; everything about it is its <see cref="AttentionKinds.For(AttentionKind)"/> spec.</summary>
    [JsonPropertyName("attention")][JsonConverter(typeof(JsonStringEnumConverter<AttentionKind>))]
    public AttentionKind Attention { get; init; } = AttentionKind.Mediator;
    /// <summary>SiT or DiT: decides the time input, the returned channels and the sampler (<see cref="ModelFamily"/>).</summary>
    [JsonPropertyName("family")][JsonConverter(typeof(JsonStringEnumConverter<ModelFamily>))]
    public ModelFamily Family { get; init; } = ModelFamily.SiT;

    /// <summary>Tokens per side: <see cref="InputSize"/> / <see cref="PatchSize"/>.</summary>
    [JsonIgnore] public int GridSize => InputSize / PatchSize;
    /// <summary>Tokens per image N: <see cref="GridSize"/> squared.</summary>
    [JsonIgnore] public int NumTokens => GridSize * GridSize;
    /// <summary>Width of one head: <see cref="HiddenSize"/> / <see cref="NumHeads"/>.</summary>
    [JsonIgnore] public int HeadDim => HiddenSize / NumHeads;
    /// <summary>MLP hidden width: <see cref="HiddenSize"/> x <see cref="MlpRatio"/>, truncated.</summary>
    [JsonIgnore] public int MlpHidden => (int)(HiddenSize * MlpRatio);
    /// <summary>Channels the output layer produces: 2 x <see cref="InChannels"/> with <see cref="LearnSigma"/>, else <see cref="InChannels"/>.</summary>
    [JsonIgnore] public int OutChannels => LearnSigma ? InChannels * 2 : InChannels;
    /// <summary>Mediators per side: the square root of <see cref="MediatorNum"/>.</summary>
    [JsonIgnore] public int MediatorGrid => (int)Math.Round(Math.Sqrt(MediatorNum));
    /// <summary>Channels forward() returns: SiT drops the sigma half, DiT returns all of them.</summary>
    [JsonIgnore] public int ReturnedChannels => Family == ModelFamily.DiT ? OutChannels : InChannels;

    /// <summary>
    /// Upper bounds of the fields: far above any published DiT/SiT (XL: hidden 1152, depth 28, 1000 classes,
    /// input 64 at 512 px) and low enough that sizes computed from them cannot overflow.
    /// </summary>
    public const int MaxInputSize = 1024, MaxInChannels = 1024, MaxHiddenSize = 16384, MaxDepth = 1024, MaxNumClasses = 1_000_000, MaxMediators = 65536;

    /// <inheritdoc cref="MaxInputSize"/>
    public const double MaxMlpRatio = 64;

    /// <summary>The most parameters a config may describe (16 GB of float32 weights; SiT-XL/2 has 0.68 billion).</summary>
    public const long MaxParameters = 4_000_000_000;

    /// <summary>
    /// Throws a <see cref="MediatorDiTException"/> naming the first inconsistent or out-of-range field,
    /// prefixed with <paramref name="source"/> (the file the config came from) when given. Also refuses a
    /// config whose largest tensor (a weight, or one image's activations) would not fit one array, so no
    /// allocation fails later with an overflow.
    /// </summary>
    public ModelConfig Validate(string? source = null)
    {
        string prefix = source is null ? "" : $"{source}: ";
        void Require(bool ok, string message)
        {
            if (!ok) throw new MediatorDiTException(prefix + message);
        }
        void InRange(int value, int max, string field) =>
            Require(value > 0 && value <= max, value <= 0 ? $"{field} must be positive, got {value}." : $"{field} must be at most {max}, got {value}.");
        InRange(InputSize, MaxInputSize, "input_size");
        InRange(PatchSize, MaxInputSize, "patch_size");
        Require(InputSize % PatchSize == 0,
            $"input_size {InputSize} (image size {InputSize * 8} px for a /8 latent) is not divisible by patch_size {PatchSize}.");
        InRange(InChannels, MaxInChannels, "in_channels");
        InRange(HiddenSize, MaxHiddenSize, "hidden_size");
        Require(NumHeads > 0 && HiddenSize % NumHeads == 0,
            $"hidden_size {HiddenSize} must be a positive multiple of num_heads {NumHeads}.");
        InRange(Depth, MaxDepth, "depth");
        Require(MlpRatio > 0 && MlpRatio <= MaxMlpRatio && MlpHidden > 0,
            $"mlp_ratio must be positive (at most {MaxMlpRatio}, and hidden_size x mlp_ratio at least 1), got {MlpRatio}.");
        Require(ClassDropoutProb >= 0 && ClassDropoutProb <= 1, $"class_dropout_prob must be in [0, 1], got {ClassDropoutProb}.");
        InRange(NumClasses, MaxNumClasses, "num_classes");
        var kind = AttentionKinds.Find(Attention) ?? throw new MediatorDiTException(prefix + AttentionKinds.UnknownKind(Attention));
        if (kind.Validate(this) is string attentionError) throw new MediatorDiTException(prefix + attentionError);

        // With the fields bounded, these products fit a long; each must fit one array.
        long d = HiddenSize, tokens = NumTokens, mlp = MlpHidden;
        (long Elements, string What)[] largest =
        [
            (tokens * Math.Max(3 * d, mlp), $"one image's activations ({tokens} tokens of input_size {InputSize} / patch_size {PatchSize}, by hidden_size {HiddenSize} x mlp_ratio {MlpRatio})"),
            kind.AttentionMaps(this),
            ((NumClasses + 1L) * d, $"the class table (num_classes {NumClasses} + 1 by hidden_size {HiddenSize})"),
            (mlp * d, $"the MLP weight (hidden_size {HiddenSize} x mlp_ratio {MlpRatio} by hidden_size)"),
            (6 * d * d, $"the adaLN weight (6 hidden_size by hidden_size {HiddenSize})"),
            ((long)InChannels * PatchSize * PatchSize * d, $"the patch embedding (in_channels {InChannels} x patch_size {PatchSize}^2 by hidden_size {HiddenSize})"),
        ];
        foreach (var (elements, what) in largest)
            Require(elements <= Array.MaxLength, $"{what} would hold {elements} values, more than the {Array.MaxLength} one array holds.");
        long parameters = ParameterEstimate(kind);
        Require(parameters <= MaxParameters,
            $"depth {Depth} x hidden_size {HiddenSize} describes about {parameters / 1e9:F1} billion parameters, more than the supported {MaxParameters / 1e9:F0} billion.");
        return this;
    }

    /// <summary>Parameters of the network, to within the biases and norms: embeddings, blocks (attention, MLP, adaLN), final layer.</summary>
    private long ParameterEstimate(AttentionSpec kind)
    {
        long d = HiddenSize, mlp = MlpHidden, p2 = (long)PatchSize * PatchSize;
        long embeddings = NumTokens * d + (NumClasses + 1L) * d + InChannels * p2 * d + 256 * d + d * d;
        long block = kind.ParameterEstimatePerBlock(this) + 2 * d * mlp + 6 * d * d;
        return embeddings + Depth * block + 2 * d * d + p2 * OutChannels * d;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    /// <summary>The config as one line of JSON, with the official field names (the form <see cref="FromJson"/> reads).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>A config from JSON, validated; errors name <paramref name="source"/> (the file, or the weights' metadata).</summary>
    public static ModelConfig FromJson(string json, string source)
    {
        return ConfigJson.Read<ModelConfig>(json, source, "model config", JsonOptions).Validate(source);
    }
}
