using MediatorDiT.IO;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models;

/// <summary>
/// Mediator attention (<see cref="MediatorAttention"/>): what it is called, costs and accepts, how its
/// checkpoints look, and how its grid-sized position biases follow a change of resolution.
/// </summary>
internal sealed class MediatorAttentionKind : AttentionSpec
{
    /// <summary>The one instance, registered in <see cref="AttentionKinds.All"/>.</summary>
    public static MediatorAttentionKind Instance { get; } = new();

    /// <summary>The kind's <see cref="AttentionSpec.Name"/>, also <see cref="MediatorAttention"/>'s <see cref="IAttention.Kind"/>.</summary>
    public const string KindName = "mediator";

    /// <summary>
    /// The position biases, which each mediator count has its own of (a shared ladder keeps one set per
    /// count): an/na (heads, n, 7, 7), ah/aw (1, heads, n, G, 1)/(1, heads, n, 1, G), ha/wa (1, heads, G, 1, n)/(1, heads, 1, G, n).
    /// </summary>
    public static IReadOnlyList<string> PositionBiasNames { get; } = ["an_bias", "na_bias", "ah_bias", "aw_bias", "ha_bias", "wa_bias"];

    /// <summary>Block 0's an_bias (heads, n, 7, 7): it marks a mediator checkpoint and shows its heads and mediator count.</summary>
    private const string AnBiasKey = "blocks.0.attn.an_bias";

    private MediatorAttentionKind() { }

    public override AttentionKind Kind => AttentionKind.Mediator;
    public override string Name => KindName;
    public override string DisplayName => "mediator attention";
    public override bool UsesMediatorCount => true;
    public override string Describe(ModelConfig config) => $"{config.MediatorNum} mediators";
    public override string ShortName(ModelConfig config) => $"m{config.MediatorNum}";
    public override string Title(ModelConfig config) => $"mediator attention ({config.MediatorNum} mediators)";

    public override IAttention Create(string prefix, ModelConfig config) =>
        new MediatorAttention(prefix, config.HiddenSize, config.NumHeads, config.GridSize, config.MediatorNum);

    /// <summary>
    /// Pooling the queries to the mediator grid, resizing the two 7x7 bias maps, the four mediator products
    /// (linear in tokens) and the depthwise conv of V.
    /// </summary>
    public override IReadOnlyList<FlopComponent> MixingFlops(ModelConfig config)
    {
        double n = config.NumTokens, d = config.HiddenSize;
        double m = config.MediatorNum, heads = config.NumHeads;
        return
        [
            new("mediator pooling", FlopCounter.AdaptivePoolAccumulates(config.GridSize, config.MediatorGrid) * d),
            // Two maps (an_bias, na_bias), 4 taps per output; they depend only on parameters and are
            // counted because the reference forward recomputes them every call.
            new("bias interpolation", 2 * 4 * heads * m * n),
            new("mediator attention T K^T", m * n * d),
            new("mediator values A V", m * n * d),
            new("query attention Q T^T", n * m * d),
            new("query output A V_m", n * m * d),
            new("depthwise conv of V", n * d * FlopCounter.DepthwiseKernel * FlopCounter.DepthwiseKernel),
        ];
    }

    public override double ProductFlops(ModelConfig config)
    {
        double n = config.NumTokens, d = config.HiddenSize;
        return 4 * config.MediatorNum * n * d;
    }

    /// <summary>mediator_num must be a perfect square (the mediators form a g x g grid) and at most <see cref="ModelConfig.MaxMediators"/>.</summary>
    public override string? Validate(ModelConfig config)
    {
        int m = config.MediatorNum, g = config.MediatorGrid;
        if (m <= 0 || g * g != m)
            return $"mediator_num must be a perfect square (1, 4, 9, 16, 64, ...), got {m}.";
        if (m > ModelConfig.MaxMediators)
            return $"mediator_num must be at most {ModelConfig.MaxMediators}, got {m}.";
        return null;
    }

    public override (long Elements, string What) AttentionMaps(ModelConfig config)
    {
        long heads = config.NumHeads, tokens = config.NumTokens;
        return (heads * tokens * config.MediatorNum,
            $"one image's attention maps (num_heads {config.NumHeads} x {tokens} tokens x mediator_num {config.MediatorNum})");
    }

    public override string MarkerKey => "attn.an_bias";

    /// <summary>an_bias (heads, n, 7, 7) shows both the heads and the mediator count.</summary>
    public override AttentionShapes ReadShapes(IReadOnlyDictionary<string, StoredTensor> state, string source)
    {
        int[] an = ModelConfigInference.Shape(state, AnBiasKey, 4, source);
        return new AttentionShapes(an[0], an[1], "the mediator biases");
    }

    internal override IEnumerable<(string Key, string Fields, Func<int[], bool> Fits)> ExpectedShapes(ModelConfig config) =>
    [
        (AnBiasKey, $"num_heads {config.NumHeads} and mediator_num {config.MediatorNum}",
            s => s.Length == 4 && s[0] == config.NumHeads && s[1] == config.MediatorNum),
    ];

    /// <summary>
    /// Resolution fine-tuning as the authors do it: the row/column biases (ah/aw: (1, H, n, L, 1)/(1, H, n, 1, L);
    /// ha/wa: (1, H, L, 1, n)/(1, H, 1, L, n)) are resized along L with linear interpolation,
    /// align_corners=True; the 7x7 biases do not depend on the grid and are kept.
    /// </summary>
    internal override StoredTensor? ResizeToGrid(string key, StoredTensor stored, int grid)
    {
        if (key.EndsWith("attn.ah_bias") || key.EndsWith("attn.aw_bias"))
        {
            // (1, H, n, L, 1) and (1, H, n, 1, L) are both (H*n planes, L) in memory.
            var s = stored.Shape;
            int heads = s[1], n = s[2], length = key.EndsWith("ah_bias") ? s[3] : s[4];
            int[] shape = key.EndsWith("ah_bias") ? [1, heads, n, grid, 1] : [1, heads, n, 1, grid];
            var resized = new Tensor(shape);
            LinearResize.Forward(stored.ToFloat().Span, resized.Span, heads * n, length, grid);
            return StoredTensor.FromFloat(resized);
        }
        if (key.EndsWith("attn.ha_bias") || key.EndsWith("attn.wa_bias"))
        {
            // (1, H, L, 1, n) and (1, H, 1, L, n) are (H, L, n): move L last, resize, move it back.
            var s = stored.Shape;
            int heads = s[1], n = s[4], length = key.EndsWith("ha_bias") ? s[2] : s[3];
            var src = stored.ToFloat().Span;
            var planes = new float[heads * n * length];
            for (int h = 0; h < heads; h++)
            for (int l = 0; l < length; l++)
            for (int m = 0; m < n; m++)
                planes[(h * n + m) * length + l] = src[(h * length + l) * n + m];
            var resizedPlanes = new float[heads * n * grid];
            LinearResize.Forward(planes, resizedPlanes, heads * n, length, grid);
            int[] shape = key.EndsWith("ha_bias") ? [1, heads, grid, 1, n] : [1, heads, 1, grid, n];
            var resized = new Tensor(shape);
            var dst = resized.Span;
            for (int h = 0; h < heads; h++)
            for (int l = 0; l < grid; l++)
            for (int m = 0; m < n; m++)
                dst[(h * grid + l) * n + m] = resizedPlanes[(h * n + m) * grid + l];
            return StoredTensor.FromFloat(resized);
        }
        return null;
    }
}
