using System.Diagnostics;

namespace MediatorDiT.Devices;

/// <summary>
/// Where <see cref="CudaLibraries"/> looks: the process's environment variables, the loader's system folders, the
/// default CUDA_HOME and the Python environments' site-packages folders. <see cref="Process"/> is this process's;
/// tests build one over a folder tree of their own.
/// </summary>
public sealed record CudaSearchEnvironment
{
    /// <summary>Reads an environment variable (null: unset).</summary>
    public required Func<string, string?> Variable { get; init; }

    /// <summary>The loader's own folders after LD_LIBRARY_PATH (the ld.so.conf entries and the standard ones).</summary>
    public IReadOnlyList<string> SystemLibraryFolders { get; init; } = [];

    /// <summary>The CUDA toolkit folder used when CUDA_HOME is unset (null: none).</summary>
    public string? DefaultCudaHome { get; init; }

    /// <summary>site-packages folders of the Python environments to search for pip's nvidia/*/lib (asked only when needed).</summary>
    public Func<IEnumerable<string>> PythonSitePackages { get; init; } = () => [];

    /// <summary>This process: its environment, the loader's folders, /usr/local/cuda, python3's site-packages and common virtual environments.</summary>
    public static CudaSearchEnvironment Process { get; } = new()
    {
        Variable = Environment.GetEnvironmentVariable,
        SystemLibraryFolders = SystemFolders(),
        DefaultCudaHome = "/usr/local/cuda",
        PythonSitePackages = ProcessSitePackages,
    };

    private static string[] SystemFolders()
    {
        var folders = new List<string>();
        // The ld.so.conf entries (the driver's packages often add a file there), then the standard folders.
        try
        {
            if (Directory.Exists("/etc/ld.so.conf.d"))
                foreach (var file in Directory.EnumerateFiles("/etc/ld.so.conf.d", "*.conf").Order(StringComparer.Ordinal))
                    foreach (var line in File.ReadLines(file))
                        if (line.Trim() is { Length: > 0 } entry && entry.StartsWith('/')) folders.Add(entry);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        folders.AddRange(["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64", "/lib64", "/usr/lib", "/lib", "/usr/lib/wsl/lib"]);
        return [.. folders.Distinct()];
    }

    private static IEnumerable<string> ProcessSitePackages()
    {
        var found = new List<string>();
        foreach (var variable in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } prefix) found.AddRange(SitePackagesUnder(prefix));
        found.AddRange(AskPython());
        foreach (var venv in new[] { "/opt/torch/.venv", "/opt/venv", "/opt/conda", Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".venv") })
            found.AddRange(SitePackagesUnder(venv));
        return found.Distinct();
    }

    /// <summary>PREFIX/lib/python3.*/site-packages folders that exist.</summary>
    internal static IEnumerable<string> SitePackagesUnder(string prefix)
    {
        string lib = Path.Combine(prefix, "lib");
        if (!Directory.Exists(lib)) return [];
        try
        {
            return Directory.EnumerateDirectories(lib, "python3*").Order(StringComparer.Ordinal)
                .Select(d => Path.Combine(d, "site-packages")).Where(Directory.Exists).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static string[] AskPython()
    {
        try
        {
            var psi = new ProcessStartInfo("python3")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("import site, sys; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))");
            using var p = System.Diagnostics.Process.Start(psi);
            if (p is null) return [];
            var output = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(10_000))
            {
                p.Kill();
                return [];
            }
            return output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(Directory.Exists).ToArray();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException)
        {
            return []; // no python3 on this machine
        }
    }
}

/// <summary>One folder searched and why it was (the variable or place it came from).</summary>
/// <param name="Folder">The folder.</param>
/// <param name="Source">Where it came from: MDIT_CUDA_LIB_DIR, LD_LIBRARY_PATH, the system loader path, CUDA_HOME, Python.</param>
public readonly record struct CudaSearchFolder(string Folder, string Source);

/// <summary>What <see cref="CudaLibraries.Locate()"/> found: each library's path, or null when missing.</summary>
/// <param name="Driver">libcuda.so.1, the driver API.</param>
/// <param name="Cublas">libcublas.so.13 or .so.12.</param>
/// <param name="CublasLt">libcublasLt of the same major version as <paramref name="Cublas"/>.</param>
/// <param name="Searched">The folders looked at, in order (the search stops once everything is found).</param>
/// <param name="OverrideSet">Whether MDIT_CUDA_LIB_DIR was set.</param>
public sealed record CudaLibraryReport(string? Driver, string? Cublas, string? CublasLt, IReadOnlyList<CudaSearchFolder> Searched, bool OverrideSet)
{
    /// <summary>The driver and both cuBLAS libraries were found.</summary>
    public bool Complete => Driver is not null && Cublas is not null && CublasLt is not null;

    /// <summary>cuBLAS's major version (13 or 12), 0 when not found.</summary>
    public int CublasVersion => Cublas is null ? 0 : int.Parse(Cublas[(Cublas.LastIndexOf(".so.", StringComparison.Ordinal) + 4)..].Split('.')[0]);

    /// <summary>The places searched, as a sentence part: "on the loader path, CUDA_HOME or a Python environment's nvidia/*/lib".</summary>
    public string Places => (OverrideSet ? $"in {CudaLibraries.OverrideVariable}, " : "") + "on the loader path, CUDA_HOME or a Python environment's nvidia/*/lib";

    /// <summary>What is missing as one sentence (no trailing period), or null when <see cref="Complete"/>.</summary>
    public string? Missing =>
        Driver is null ? $"no NVIDIA driver (libcuda.so.1) was found {Places}"
        : Cublas is null ? $"the NVIDIA driver was found ({Driver}) but no cuBLAS (libcublas.so.13 or libcublas.so.12) {Places}; install the CUDA toolkit or the nvidia-cublas pip wheel, or set {CudaLibraries.OverrideVariable} to its folder"
        : CublasLt is null ? $"cuBLAS was found ({Cublas}) but not its libcublasLt.so.{CublasVersion} {Places}; set {CudaLibraries.OverrideVariable} to the folder that holds both"
        : null;

    /// <summary>Each library and where it was found, one line each, for logs.</summary>
    public string Describe() => string.Join('\n',
        $"driver:   {Driver ?? "not found"}",
        $"cuBLAS:   {Cublas ?? "not found"}",
        $"cuBLASLt: {CublasLt ?? "not found"}",
        $"searched: {string.Join(", ", Searched.Select(f => $"{f.Folder} ({f.Source})"))}");
}

/// <summary>What <see cref="CudaLibraries.Find(string)"/> found for one library file.</summary>
/// <param name="File">The file looked for, e.g. libnccl.so.2.</param>
/// <param name="Path">Its path in the first folder that has it, or null.</param>
/// <param name="Searched">The folders looked at, in order.</param>
/// <param name="OverrideSet">Whether MDIT_CUDA_LIB_DIR was set.</param>
public sealed record CudaFileReport(string File, string? Path, IReadOnlyList<CudaSearchFolder> Searched, bool OverrideSet)
{
    /// <summary>The places searched, as a sentence part (as <see cref="CudaLibraryReport.Places"/>).</summary>
    public string Places => (OverrideSet ? $"in {CudaLibraries.OverrideVariable}, " : "") + "on the loader path, CUDA_HOME or a Python environment's nvidia/*/lib";
}

/// <summary>
/// Finds the CUDA libraries at run time, in this order of folders: MDIT_CUDA_LIB_DIR (colon-separated), LD_LIBRARY_PATH,
/// the system loader path, CUDA_HOME/lib64 and /lib (default /usr/local/cuda), and the nvidia/*/lib folders of a Python
/// environment's site-packages (where pip's nvidia-* wheels put them). Each library is taken from the first folder
/// that has it. Nothing is loaded here; <see cref="CudaDriver"/> loads the driver.
/// </summary>
public static class CudaLibraries
{
    /// <summary>The variable naming folders searched first.</summary>
    public const string OverrideVariable = "MDIT_CUDA_LIB_DIR";

    /// <summary>The driver API's file name (libcuda.so is the development link, not always installed).</summary>
    public const string DriverFile = "libcuda.so.1";

    /// <summary>cuBLAS major versions accepted, the newest first.</summary>
    public static IReadOnlyList<int> CublasVersions { get; } = [13, 12];

    /// <summary>Looks in this process's environment.</summary>
    public static CudaLibraryReport Locate() => Locate(CudaSearchEnvironment.Process);

    /// <summary>Looks in <paramref name="environment"/>.</summary>
    public static CudaLibraryReport Locate(CudaSearchEnvironment environment)
    {
        string? driver = null, cublas = null, cublasLt = null;
        var searched = new List<CudaSearchFolder>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        // Lazily: Python's folders are listed (python3 asked) only when the earlier places lack something.
        foreach (var folder in Folders(environment).Concat(PythonFolders(environment)))
        {
            if (!seen.Add(folder.Folder) || !Directory.Exists(folder.Folder)) continue;
            searched.Add(folder);
            driver ??= Existing(folder.Folder, DriverFile);
            if (cublas is null)
                foreach (int v in CublasVersions)
                    if (Existing(folder.Folder, $"libcublas.so.{v}") is string found)
                    {
                        cublas = found;
                        break;
                    }
            if (cublas is not null && cublasLt is null)
                cublasLt = searched.Select(f => Existing(f.Folder, $"libcublasLt.so.{VersionOf(cublas)}")).FirstOrDefault(p => p is not null);
            if (driver is not null && cublas is not null && cublasLt is not null) break;
        }
        return new CudaLibraryReport(driver, cublas, cublasLt, searched, !string.IsNullOrWhiteSpace(environment.Variable(OverrideVariable)));
    }

    /// <summary>
    /// Another library of the CUDA stack (e.g. NCCL's libnccl.so.2) by the same search in the same order of folders:
    /// the first folder holding <paramref name="file"/>, or null, with the folders looked at.
    /// </summary>
    public static CudaFileReport Find(string file) => Find(file, CudaSearchEnvironment.Process);

    /// <inheritdoc cref="Find(string)"/>
    public static CudaFileReport Find(string file, CudaSearchEnvironment environment)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(file);
        ArgumentNullException.ThrowIfNull(environment);
        var searched = new List<CudaSearchFolder>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string? path = null;
        foreach (var folder in Folders(environment).Concat(PythonFolders(environment)))
        {
            if (!seen.Add(folder.Folder) || !Directory.Exists(folder.Folder)) continue;
            searched.Add(folder);
            if ((path = Existing(folder.Folder, file)) is not null) break;
        }
        return new CudaFileReport(file, path, searched, !string.IsNullOrWhiteSpace(environment.Variable(OverrideVariable)));
    }

    private static int VersionOf(string path) => int.Parse(path[(path.LastIndexOf(".so.", StringComparison.Ordinal) + 4)..].Split('.')[0]);

    private static string? Existing(string folder, string file)
    {
        string path = Path.Combine(folder, file);
        return File.Exists(path) ? path : null;
    }

    /// <summary>The folders before Python's: override, LD_LIBRARY_PATH, the system loader path, CUDA_HOME.</summary>
    private static IEnumerable<CudaSearchFolder> Folders(CudaSearchEnvironment environment)
    {
        foreach (var f in PathList(environment.Variable(OverrideVariable))) yield return new(f, OverrideVariable);
        foreach (var f in PathList(environment.Variable("LD_LIBRARY_PATH"))) yield return new(f, "LD_LIBRARY_PATH");
        foreach (var f in environment.SystemLibraryFolders) yield return new(f, "the system loader path");
        string? home = environment.Variable("CUDA_HOME") is { Length: > 0 } h ? h : environment.DefaultCudaHome;
        if (home is not null)
        {
            yield return new(Path.Combine(home, "lib64"), "CUDA_HOME");
            yield return new(Path.Combine(home, "lib"), "CUDA_HOME");
            // The driver's stub (for linking only) sits in lib64/stubs and is deliberately not searched.
        }
    }

    /// <summary>nvidia/*/lib under each site-packages folder (pip's nvidia-cublas-cu12, nvidia-cuda-runtime-cu12, ...).</summary>
    private static IEnumerable<CudaSearchFolder> PythonFolders(CudaSearchEnvironment environment)
    {
        foreach (var site in environment.PythonSitePackages())
        {
            string nvidia = Path.Combine(site, "nvidia");
            if (!Directory.Exists(nvidia)) continue;
            string[] libs;
            try
            {
                libs = Directory.EnumerateDirectories(nvidia).Order(StringComparer.Ordinal).Select(d => Path.Combine(d, "lib")).ToArray();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            foreach (var lib in libs) yield return new(lib, $"Python ({site})");
        }
    }

    private static IEnumerable<string> PathList(string? value) =>
        string.IsNullOrWhiteSpace(value) ? [] : value.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
