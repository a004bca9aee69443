namespace MediatorDiT.Data;

/// <summary>
/// Images of a built-in dataset as parsed or cached: <paramref name="Images"/> is (N, H, W) uint8
/// row-major, sorted by class and then by source order; <paramref name="Labels"/> (N) the classes.
/// </summary>
internal sealed record ImageSetContents(byte[] Images, byte[] Labels, int[] ClassCounts)
{
    /// <summary>Empty image entries dropped while parsing the package (recorded in the manifest for reference).</summary>
    public int EmptyEntriesSkipped { get; init; }
}
