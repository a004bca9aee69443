using System.Security.Cryptography;
using MediatorDiT.IO;

namespace MediatorDiT.Data;

/// <summary>
/// Reads and writes the binary cache of a built-in dataset, <c>&lt;dataDir&gt;/&lt;name&gt;/</c>:
/// images.u8 (N, H, W) uint8, labels.u8 (N) uint8 and manifest.json. Loading is two file reads and
/// two SHA-256 checks, a few tens of milliseconds for Fashion-MNIST's 55 MB.
/// </summary>
internal static class ImageCacheFolder
{
    public static void Write(string folder, BuiltInDataset dataset, ImageSetContents contents, string packageIntegrity)
    {
        Directory.CreateDirectory(folder);
        var set = new CachedImageSet(dataset, folder, contents);
        var manifest = new ImageCacheManifest(
            dataset.Name, dataset.PackageSpec, packageIntegrity, dataset.ImageHeight, dataset.ImageWidth,
            contents.ClassCounts, dataset.TestSplit.ToString(),
            set.SplitIndices(DatasetSplit.Train).Length, set.SplitIndices(DatasetSplit.Test).Length,
            Sha256(contents.Images), Sha256(contents.Labels))
        {
            EmptyEntriesSkipped = contents.EmptyEntriesSkipped,
        };
        AtomicFile.Write(Path.Combine(folder, ImageCacheManifest.ImagesFileName), s => s.Write(contents.Images));
        AtomicFile.Write(Path.Combine(folder, ImageCacheManifest.LabelsFileName), s => s.Write(contents.Labels));
        // Last: its presence marks the cache complete.
        AtomicFile.Write(Path.Combine(folder, ImageCacheManifest.FileName), s => s.Write(manifest.ToJson()));
    }

    /// <summary>
    /// The cached set, or null with <paramref name="problem"/> saying why not ("" when there is simply
    /// no cache yet; otherwise what is stale or damaged, so the caller can say it rebuilds).
    /// </summary>
    public static CachedImageSet? TryLoad(string folder, BuiltInDataset dataset, out string problem)
    {
        string manifestPath = Path.Combine(folder, ImageCacheManifest.FileName);
        if (!File.Exists(manifestPath))
        {
            problem = "";
            return null;
        }
        try
        {
            ImageCacheManifest? manifest = ImageCacheManifest.TryParse(File.ReadAllBytes(manifestPath), out problem);
            if (manifest is null) return null;
            problem = Mismatch(manifest, dataset);
            if (problem.Length > 0) return null;

            byte[] images = File.ReadAllBytes(Path.Combine(folder, ImageCacheManifest.ImagesFileName));
            byte[] labels = File.ReadAllBytes(Path.Combine(folder, ImageCacheManifest.LabelsFileName));
            long count = manifest.Count;
            if (images.LongLength != count * manifest.Height * manifest.Width || labels.LongLength != count)
                problem = $"{ImageCacheManifest.ImagesFileName} or {ImageCacheManifest.LabelsFileName} does not have the size the manifest gives ({count} images)";
            else if (Sha256(images) != manifest.ImagesSha256 || Sha256(labels) != manifest.LabelsSha256)
                problem = "a checksum does not match the manifest (the files are damaged)";
            else if (!LabelsFollowClassCounts(labels, manifest.ClassCounts))
                problem = "the labels are not sorted by class as the manifest's class counts say";
            if (problem.Length > 0) return null;
            return new CachedImageSet(dataset, folder, new ImageSetContents(images, labels, manifest.ClassCounts));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problem = $"it cannot be read ({ex.Message.TrimEnd('.')})";
            return null;
        }
    }

    private static string Mismatch(ImageCacheManifest manifest, BuiltInDataset dataset)
    {
        if (manifest.Dataset != dataset.Name || manifest.Package != dataset.PackageSpec)
            return $"it holds {manifest.Package} for '{manifest.Dataset}', not {dataset.PackageSpec}";
        if (dataset.PackageIntegrity is { } integrity && manifest.PackageIntegrity != integrity)
            return $"it was built from a package whose checksum is not the pinned one";
        if (manifest.Height != dataset.ImageHeight || manifest.Width != dataset.ImageWidth || manifest.ClassCounts.Length != dataset.NumClasses)
            return $"it holds {manifest.ClassCounts.Length} classes of {manifest.Height}x{manifest.Width} images, not {dataset.NumClasses} of {dataset.ImageHeight}x{dataset.ImageWidth}";
        if (manifest.ClassCounts.Any(c => c < 0))
            return "its class counts are negative";
        if (dataset.ExpectedClassCounts is { } expected && !manifest.ClassCounts.SequenceEqual(expected))
            return "its class counts are not those of the pinned package";
        return "";
    }

    private static bool LabelsFollowClassCounts(ReadOnlySpan<byte> labels, int[] classCounts)
    {
        int offset = 0;
        for (int c = 0; c < classCounts.Length; c++)
        {
            if (labels.Slice(offset, classCounts[c]).ContainsAnyExcept((byte)c)) return false;
            offset += classCounts[c];
        }
        return true;
    }

    private static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
