using System.IO.Compression;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// Writes a zip laid out like torch.save's: &lt;archive&gt;/data.pkl, &lt;archive&gt;/data/&lt;key&gt; storages
/// and &lt;archive&gt;/version, all stored uncompressed.
/// </summary>
public static class TorchZipWriter
{
    public static void Write(string path, byte[] pickle, IReadOnlyDictionary<string, byte[]> storages, string archive = "archive")
    {
        using var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create);
        Add(zip, $"{archive}/data.pkl", pickle);
        foreach (var (key, bytes) in storages) Add(zip, $"{archive}/data/{key}", bytes);
        Add(zip, $"{archive}/version", "3\n"u8.ToArray());
    }

    private static void Add(ZipArchive zip, string name, byte[] bytes)
    {
        using Stream stream = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
        stream.Write(bytes);
    }
}
