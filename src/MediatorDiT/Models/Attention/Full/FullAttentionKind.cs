using MediatorDiT.IO;

namespace MediatorDiT.Models;

/// <summary>Full attention (<see cref="FullAttention"/>): what it is called, costs and accepts, and how its checkpoints look.</summary>
internal sealed class FullAttentionKind : AttentionSpec
{
    /// <summary>The one instance, registered in <see cref="AttentionKinds.All"/>.</summary>
    public static FullAttentionKind Instance { get; } = new();

    /// <summary>The kind's <see cref="AttentionSpec.Name"/>, also <see cref="FullAttention"/>'s <see cref="IAttention.Kind"/>.</summary>
    public const string KindName = "full";

    private FullAttentionKind() { }

    public override AttentionKind Kind => AttentionKind.Full;
    public override string Name => KindName;
    public override string DisplayName => "full attention";
    public override bool UsesMediatorCount => false;
    public override string Describe(ModelConfig config) => "full attention";
    public override string ShortName(ModelConfig config) => "full";
    public override string Title(ModelConfig config) => "full attention";

    public override IAttention Create(string prefix, ModelConfig config) => new FullAttention(prefix, config.HiddenSize, config.NumHeads);

    /// <summary>Q K^T and A V: N^2 D each, quadratic in tokens.</summary>
    public override IReadOnlyList<FlopComponent> MixingFlops(ModelConfig config)
    {
        double n = config.NumTokens, d = config.HiddenSize;
        return
        [
            new("attention Q K^T", n * n * d),
            new("attention A V", n * n * d),
        ];
    }

    public override double ProductFlops(ModelConfig config)
    {
        double n = config.NumTokens, d = config.HiddenSize;
        return 2 * n * n * d;
    }

    /// <summary>Full attention has no fields of its own (mediator_num is ignored).</summary>
    public override string? Validate(ModelConfig config) => null;

    public override (long Elements, string What) AttentionMaps(ModelConfig config)
    {
        long heads = config.NumHeads, tokens = config.NumTokens;
        return (heads * tokens * tokens, $"one image's attention maps (num_heads {config.NumHeads} x {tokens} x {tokens} tokens)");
    }

    public override string MarkerKey => "attn.qkv.weight";

    /// <summary>qkv and proj show the width, not the number of heads.</summary>
    public override AttentionShapes ReadShapes(IReadOnlyDictionary<string, StoredTensor> state, string source) => AttentionShapes.None;
}
