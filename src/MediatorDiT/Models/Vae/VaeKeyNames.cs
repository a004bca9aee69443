namespace MediatorDiT.Models.Vae;

/// <summary>
/// The two diffusers naming schemes of the mid-block attention. Checkpoints written by diffusers up to
/// v0.14 (the version DiT used) say query/key/value/proj_attn; later ones say to_q/to_k/to_v/to_out.0.
/// Every other key is the same in both. The model's parameters carry the older names.
/// </summary>
internal static class VaeKeyNames
{
    private static readonly (string Modern, string Older)[] Renames =
    [
        (".to_q.", ".query."),
        (".to_k.", ".key."),
        (".to_v.", ".value."),
        (".to_out.0.", ".proj_attn."),
    ];

    private const string AttentionMarker = ".attentions.";

    /// <summary>The older (model) name of a key written under either scheme.</summary>
    public static string ToOlder(string key)
    {
        if (!key.Contains(AttentionMarker, StringComparison.Ordinal)) return key;
        foreach (var (modern, older) in Renames)
            if (key.Contains(modern, StringComparison.Ordinal)) return key.Replace(modern, older, StringComparison.Ordinal);
        return key;
    }

    /// <summary>The modern name of a key written under either scheme.</summary>
    public static string ToModern(string key)
    {
        if (!key.Contains(AttentionMarker, StringComparison.Ordinal)) return key;
        foreach (var (modern, older) in Renames)
            if (key.Contains(older, StringComparison.Ordinal)) return key.Replace(older, modern, StringComparison.Ordinal);
        return key;
    }
}
