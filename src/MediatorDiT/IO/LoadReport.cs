namespace MediatorDiT.IO;

/// <summary>
/// What <see cref="StateDict.LoadInto"/> did: the parameters it filled, model parameters the file
/// lacks, file entries the model lacks, and entries left unloaded because their shape differs.
/// </summary>
public sealed record LoadReport(
    string Source,
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<ShapeMismatch> Mismatched)
{
    private const int ShownPerList = 5;

    /// <summary>True when every parameter was loaded and the file held nothing else.</summary>
    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0 && Mismatched.Count == 0;

    /// <summary>One sentence: the source, how many parameters were loaded, and up to five names per kind of problem.</summary>
    public override string ToString()
    {
        int total = Loaded.Count + Missing.Count + Mismatched.Count;
        var parts = new List<string> { $"{Source}: loaded {Loaded.Count} of {total} parameters" };
        if (Missing.Count > 0) parts.Add($"{Missing.Count} missing ({Shorten(Missing)})");
        if (Unexpected.Count > 0) parts.Add($"{Unexpected.Count} unexpected ({Shorten(Unexpected)})");
        if (Mismatched.Count > 0) parts.Add($"{Mismatched.Count} with the wrong shape ({Shorten(Mismatched.Select(m => m.ToString()).ToList())})");
        return string.Join("; ", parts) + ".";
    }

    private static string Shorten(IReadOnlyList<string> items) =>
        string.Join(", ", items.Take(ShownPerList)) + (items.Count > ShownPerList ? $", and {items.Count - ShownPerList} more" : "");
}
