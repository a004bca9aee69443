namespace MediatorDiT.Tests;

/// <summary>
/// Locates the golden tensors in ../shared/fixtures next to the repository root (the folder holding
/// MediatorDiT.sln), walking up from the test binary.
/// </summary>
public static class Fixtures
{
    private static readonly Lazy<string> Root = new(FindRepoRoot);

    public static string RepoRoot => Root.Value;

    /// <summary>The fixtures folder: MDIT_FIXTURES when set (a GPU machine's bundle, scripts/gpu-tests.sh), else ../shared/fixtures.</summary>
    public static string Dir => Environment.GetEnvironmentVariable("MDIT_FIXTURES") is { Length: > 0 } dir
        ? Path.GetFullPath(dir)
        : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures"));

    public static string PathOf(string fileName)
    {
        string p = Path.Combine(Dir, fileName);
        if (!File.Exists(p)) throw new FileNotFoundException($"fixture {p} is missing; the tests need ../shared/fixtures next to the repository.");
        return p;
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MediatorDiT.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find MediatorDiT.sln above the test binary.");
    }
}
