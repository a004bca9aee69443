namespace MediatorDiT.Models;

/// <summary>
/// The standard sizes of DiT/SiT: S, B, L, XL with patch 2, 4, 8, named "SiT-S/2", "DiT-XL/2", ...
/// </summary>
public static class ModelRegistry
{
    private static readonly Dictionary<string, (int Depth, int Hidden, int Heads)> Sizes = new()
    {
        ["S"] = (12, 384, 6),
        ["B"] = (12, 768, 12),
        ["L"] = (24, 1024, 16),
        ["XL"] = (28, 1152, 16),
    };

    private static readonly int[] Patches = [2, 4, 8];

    /// <summary>All registered names, e.g. SiT-S/2 ... DiT-XL/8.</summary>
    public static IEnumerable<string> Names =>
        from family in new[] { "SiT", "DiT" }
        from size in Sizes.Keys
        from p in Patches
        select $"{family}-{size}/{p}";

    /// <summary>
    /// The config for a registered name. <paramref name="imageSize"/> is in pixels of a /8 latent
    /// (256 gives a 32x32 latent); <paramref name="mediators"/> = 0 selects full attention.
    /// </summary>
    public static ModelConfig Get(string name, int imageSize = 256, int mediators = 0, int numClasses = 1000,
        int inChannels = 4, bool learnSigma = true)
    {
        var parts = name.Split('-', 2);
        var sizePatch = parts.Length == 2 ? parts[1].Split('/') : [];
        if (parts.Length != 2 || sizePatch.Length != 2
            || !Enum.TryParse<ModelFamily>(parts[0], ignoreCase: true, out var family)
            || !Sizes.TryGetValue(sizePatch[0].ToUpperInvariant(), out var size)
            || !int.TryParse(sizePatch[1], out int patch) || Array.IndexOf(Patches, patch) < 0)
        {
            throw new MediatorDiTException(
                $"unknown model '{name}'; expected one of {string.Join(", ", Names.Where(n => n.StartsWith("SiT")))} (or the DiT- forms).");
        }
        if (imageSize <= 0 || imageSize % 8 != 0)
            throw new MediatorDiTException($"image size {imageSize} px must be a positive multiple of 8 (the VAE downsamples by 8).");
        return AttentionKinds.WithMediators(new ModelConfig
        {
            InputSize = imageSize / 8,
            PatchSize = patch,
            InChannels = inChannels,
            HiddenSize = size.Hidden,
            Depth = size.Depth,
            NumHeads = size.Heads,
            NumClasses = numClasses,
            LearnSigma = learnSigma,
            Family = family,
        }, mediators > 0 ? mediators : null).Validate();
    }
}
