namespace MediatorDiT.Models;

/// <summary>SiT (continuous t in [0,1], returns the first C channels) or DiT (integer t, returns all 2C).</summary>
public enum ModelFamily
{
    /// <summary>Scalable Interpolant Transformer: continuous time t in [0, 1], returns the first C channels.</summary>
    SiT,
    /// <summary>Diffusion Transformer: integer timestep, returns all output channels (with learned sigma, 2C).</summary>
    DiT,
}

/// <summary>
/// Tells DiT and SiT checkpoints apart. Their state dicts have the same keys and shapes, so the family is
/// taken, in order, from: the option the user gave (<c>--family</c>); the config in the file's metadata;
/// the file name, when one of its words (split at '-', '_', '.', spaces) is "DiT" or "SiT" in any letter
/// case (DiT-XL-2-256x256.pt, SiT-XL-2-256.pt). Otherwise it is an error: sampling a SiT network with
/// DiT's diffusion (or the reverse) would run and make noise, so it is never guessed.
/// </summary>
public static class ModelFamilies
{
    /// <summary>
    /// The family <paramref name="text"/> names ("DiT" or "SiT", any letter case); otherwise a
    /// <see cref="MediatorDiTException"/> whose message starts with <paramref name="what"/> (the option, e.g. "--family").
    /// </summary>
    public static ModelFamily Parse(string text, string what) =>
        Enum.TryParse<ModelFamily>(text, ignoreCase: true, out var family) && Enum.IsDefined(family) && !int.TryParse(text, out _)
            ? family
            : throw new MediatorDiTException($"{what} '{text}' is not a known model family; expected DiT or SiT.");

    /// <summary>The family named by a word of the file name, or null.</summary>
    public static ModelFamily? FromFileName(string path)
    {
        var words = Path.GetFileName(path).Split(['-', '_', '.', ' '], StringSplitOptions.RemoveEmptyEntries);
        bool dit = words.Any(w => w.Equals("dit", StringComparison.OrdinalIgnoreCase));
        bool sit = words.Any(w => w.Equals("sit", StringComparison.OrdinalIgnoreCase));
        if (dit && sit)
            throw new MediatorDiTException($"{path}: the file name says both DiT and SiT; pass --family DiT or --family SiT.");
        return dit ? ModelFamily.DiT : sit ? ModelFamily.SiT : null;
    }

    /// <summary>The option, else the file name; a clear error when neither says.</summary>
    public static ModelFamily Resolve(string path, ModelFamily? option) =>
        option ?? FromFileName(path)
        ?? throw new MediatorDiTException(
            $"{path}: cannot tell whether this is a DiT or a SiT checkpoint (both have the same keys, the file carries no config and its name says neither); pass --family DiT or --family SiT, or --config C.json.");
}
