using System.IO.Compression;

namespace MediatorDiT.IO;

/// <summary>
/// The zip container of a PyTorch checkpoint (torch.save since 1.6): <c>&lt;archive&gt;/data.pkl</c>
/// (the pickled object), <c>&lt;archive&gt;/data/&lt;key&gt;</c> (raw storages) and small records such as
/// <c>version</c> and <c>byteorder</c>. The archive folder name is whatever the file was called
/// when saved, so it is taken from the entries. Entry contents are checked against their CRC-32,
/// since the BCL zip reader does not check it.
/// </summary>
internal sealed class TorchArchive : IDisposable
{
    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _entries;

    public string Path { get; }

    /// <summary>The folder all records live in, e.g. "dit_model" or "archive".</summary>
    public string Prefix { get; }

    private TorchArchive(string path, ZipArchive zip, Dictionary<string, ZipArchiveEntry> entries, string prefix)
    {
        Path = path;
        _zip = zip;
        _entries = entries;
        Prefix = prefix;
    }

    private const long MaxDeflateRatio = 1032;

    public static bool HasZipMagic(ReadOnlySpan<byte> prefix) =>
        prefix.Length >= 4 && prefix[0] == (byte)'P' && prefix[1] == (byte)'K' && prefix[2] == 3 && prefix[3] == 4;

    /// <summary>
    /// torch.save's pre-1.6 format: a pickle stream opening with PROTO and the LONG1 magic number, or
    /// (older still) a tar file.
    /// </summary>
    public static bool LooksLikeLegacyTorchFile(ReadOnlySpan<byte> prefix) =>
        (prefix.Length >= 3 && prefix[0] == 0x80 && prefix[1] <= 5 && prefix[2] == 0x8A)
        || (prefix.Length >= 262 && prefix.Slice(257, 5).SequenceEqual("ustar"u8));

    public static TorchArchive Open(string path)
    {
        byte[] prefix = InputFile.ReadPrefix(path, 262);
        if (!HasZipMagic(prefix))
        {
            if (LooksLikeLegacyTorchFile(prefix))
                throw new MediatorDiTException($"{path}: is a legacy (pre-1.6) PyTorch file, not the zip format; re-save it with torch.save(obj, path) from PyTorch 1.6 or newer (without _use_new_zipfile_serialization=False).");
            throw new MediatorDiTException($"{path}: is not a PyTorch zip checkpoint (it does not start with the zip signature 'PK\\x03\\x04').");
        }

        FileStream stream = InputFile.OpenStream(path);
        ZipArchive? zip = null;
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
            // The central directory is read on first use of Entries, so its errors are the same damage.
            foreach (ZipArchiveEntry entry in zip.Entries) entries.TryAdd(entry.FullName, entry);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException)
        {
            zip?.Dispose();
            stream.Dispose();
            throw new MediatorDiTException($"{path}: the zip structure of this PyTorch checkpoint is damaged ({ex.Message.TrimEnd('.')}); the file is probably truncated.", ex);
        }

        try
        {
            string archivePrefix = FindPrefix(path, zip!, entries);
            var archive = new TorchArchive(path, zip!, entries, archivePrefix);
            archive.CheckByteOrder();
            return archive;
        }
        catch
        {
            zip!.Dispose();
            throw;
        }
    }

    /// <summary>Like PyTorch: the folder of the first entry, provided it holds data.pkl; else any top-level folder that does.</summary>
    private static string FindPrefix(string path, ZipArchive zip, Dictionary<string, ZipArchiveEntry> entries)
    {
        if (zip.Entries.Count > 0)
        {
            string first = zip.Entries[0].FullName;
            int slash = first.IndexOf('/');
            if (slash > 0 && entries.ContainsKey(first[..slash] + "/data.pkl")) return first[..slash];
        }
        foreach (string name in entries.Keys)
        {
            if (name.EndsWith("/data.pkl", StringComparison.Ordinal) && name.IndexOf('/') == name.Length - "/data.pkl".Length)
                return name[..^"/data.pkl".Length];
        }
        throw new MediatorDiTException($"{path}: is a zip file without a '<archive>/data.pkl' entry, so it is not a PyTorch checkpoint.");
    }

    private void CheckByteOrder()
    {
        if (!_entries.ContainsKey(Prefix + "/byteorder")) return; // older writers: always little-endian
        string order = System.Text.Encoding.ASCII.GetString(ReadEntry("byteorder")).Trim();
        if (order != "little")
            throw new MediatorDiTException($"{Path}: stores its tensors in '{new string(order.Take(40).Select(c => char.IsControl(c) ? '?' : c).ToArray())}' byte order; only little-endian checkpoints are supported.");
    }

    /// <summary>The record <c>&lt;prefix&gt;/<paramref name="name"/></c>, or null when absent.</summary>
    public ZipArchiveEntry? FindEntry(string name) =>
        _entries.TryGetValue(Prefix + "/" + name, out ZipArchiveEntry? entry) ? entry : null;

    /// <summary>Reads a whole record and verifies its CRC-32.</summary>
    public byte[] ReadEntry(string name)
    {
        ZipArchiveEntry entry = FindEntry(name)
            ?? throw new MediatorDiTException($"{Path}: the zip archive has no entry '{Prefix}/{name}' (the file is incomplete or damaged).");
        if (entry.Length > Array.MaxLength)
            throw new MediatorDiTException($"{Path}: entry '{entry.FullName}' has {entry.Length} bytes, more than one array can hold.");
        // Deflate expands at most about 1032-fold, so a larger declared size is a damaged (or hostile) directory, not data to allocate for.
        if (entry.Length > entry.CompressedLength * MaxDeflateRatio + 1024)
            throw new MediatorDiTException($"{Path}: entry '{entry.FullName}' claims {entry.Length} bytes from {entry.CompressedLength} compressed ones, more than deflate can produce; the file is damaged.");
        var bytes = new byte[entry.Length];
        try
        {
            using Stream stream = entry.Open();
            stream.ReadExactly(bytes);
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or IOException)
        {
            throw new MediatorDiTException($"{Path}: entry '{entry.FullName}' cannot be read ({ex.Message.TrimEnd('.')}); the file is damaged.", ex);
        }
        // Writers that skip checksums (torch's set_crc32_options(False)) store 0.
        if (entry.Crc32 != 0 && Crc32.Compute(bytes) != entry.Crc32)
            throw new MediatorDiTException($"{Path}: entry '{entry.FullName}' fails its CRC-32 check (stored {entry.Crc32:X8}, computed {Crc32.Compute(bytes):X8}); the file is corrupt.");
        return bytes;
    }

    public void Dispose() => _zip.Dispose();
}
