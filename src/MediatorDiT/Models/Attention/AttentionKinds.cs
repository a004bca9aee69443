using MediatorDiT.IO;

namespace MediatorDiT.Models;

/// <summary>
/// The registry of attention kinds: each <see cref="AttentionKind"/> member's <see cref="AttentionSpec"/>, and
/// the questions callers ask about a config's attention (its label, its mediator count) answered by it.
/// </summary>
public static class AttentionKinds
{
    /// <summary>
    /// Every kind's spec, one per <see cref="AttentionKind"/> member, in the order checkpoints are recognised
    /// (<see cref="Recognise"/>): a kind whose weights also hold another kind's marker key comes before it
    /// (mediator attention has full attention's attn.qkv too).
    /// </summary>
    internal static IReadOnlyList<AttentionSpec> All { get; } =
    [
        MediatorAttentionKind.Instance,
        FullAttentionKind.Instance,
    ];

    /// <summary>The spec of <paramref name="kind"/>; throws a <see cref="MediatorDiTException"/> for a value that is no member.</summary>
    internal static AttentionSpec For(AttentionKind kind) =>
        Find(kind) ?? throw new MediatorDiTException(UnknownKind(kind));

    /// <summary>The spec of the config's <see cref="ModelConfig.Attention"/>.</summary>
    internal static AttentionSpec For(ModelConfig config) => For(config.Attention);

    /// <summary>The kind whose marker key block 0 of <paramref name="state"/> has, trying <see cref="All"/> in order; null when none has.</summary>
    internal static AttentionSpec? Recognise(IReadOnlyDictionary<string, StoredTensor> state)
    {
        foreach (var spec in All)
            if (spec.Recognises(state)) return spec;
        return null;
    }

    /// <summary>"full attention" or "16 mediators".</summary>
    public static string Describe(ModelConfig config) => For(config).Describe(config);

    /// <summary>"full" or "m16", as the ladder's files and the demo name its models.</summary>
    public static string ShortName(ModelConfig config) => For(config).ShortName(config);

    /// <summary>0 for full attention, else the mediator count (as run records store it).</summary>
    public static int MediatorCount(ModelConfig config) => For(config).MediatorCount(config);

    /// <summary>
    /// The config with the attention an option or a train config's list of mediator counts selects: no count
    /// (null) is full attention, mediator_num left as it is; a count is mediator attention with that many
    /// mediators (checked by <see cref="ModelConfig.Validate"/>).
    /// </summary>
    public static ModelConfig WithMediators(ModelConfig config, int? mediators) => mediators is int n
        ? config with { Attention = AttentionKind.Mediator, MediatorNum = n }
        : config with { Attention = AttentionKind.Full };

    internal static AttentionSpec? Find(AttentionKind kind)
    {
        foreach (var spec in All)
            if (spec.Kind == kind) return spec;
        return null;
    }

    internal static string UnknownKind(AttentionKind kind) =>
        $"attention must be one of {string.Join(", ", Enum.GetNames<AttentionKind>())}, got {kind}.";

    /// <summary>"neither 'blocks.0.attn.qkv.weight' (full attention) nor 'blocks.0.attn.an_bias' (mediator attention)".</summary>
    internal static string NoMarkerPhrase() =>
        "neither " + string.Join(" nor ", All.OrderBy(s => s.Kind).Select(s => $"'blocks.0.{s.MarkerKey}' ({s.DisplayName})"));
}
