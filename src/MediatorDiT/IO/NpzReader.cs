using System.IO.Compression;

namespace MediatorDiT.IO;

/// <summary>
/// Reads .npz archives (np.savez and np.savez_compressed output, and <see cref="NpzWriter"/>'s):
/// the arrays are the zip entries named "&lt;name&gt;.npy". Whole arrays come back as
/// <see cref="StoredTensor"/> (convert with ToFloat or ToInt64); large ones can be read in parts
/// with <see cref="OpenArray"/>. Each entry's CRC-32 is checked once it has been read to the end.
/// An array's header must account for exactly the uncompressed size the zip directory gives its entry,
/// and no entry is inflated past that size, so a small archive cannot unpack into gigabytes unnoticed;
/// whole-array reads are also bounded by <see cref="InputLimits.MaxArrayElements"/>.
/// </summary>
public sealed class NpzReader : IDisposable
{
    private readonly ZipArchive _zip;
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly InputLimits _limits;
    private readonly Dictionary<string, ZipArchiveEntry> _entries = new(StringComparer.Ordinal);

    /// <summary>The file path, or the name given for a stream, as messages mention it.</summary>
    public string Path { get; }

    /// <summary>Array names (entry names without ".npy"), in archive order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Opens the .npz file at <paramref name="path"/> and reads its directory.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">bounds on whole-array reads; <see cref="InputLimits.Default"/> when null</param>
    /// <exception cref="MediatorDiTException">The file cannot be opened or is no zip archive.</exception>
    public NpzReader(string path, InputLimits? limits = null)
        : this(InputFile.OpenStream(path), path, leaveOpen: false, limits)
    {
    }

    /// <summary>Reads an archive from a seekable stream; <paramref name="sourceName"/> names it in messages.</summary>
    public NpzReader(Stream stream, string sourceName, bool leaveOpen = false, InputLimits? limits = null)
    {
        Path = sourceName;
        _limits = limits ?? InputLimits.Default;
        _stream = stream;
        _leaveOpen = leaveOpen;
        var names = new List<string>();
        try
        {
            _zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            // The central directory is read here, on first use of Entries, so its errors belong to the same message.
            foreach (ZipArchiveEntry entry in _zip.Entries)
            {
                if (!entry.FullName.EndsWith(".npy", StringComparison.Ordinal)) continue;
                string name = entry.FullName[..^4];
                if (_entries.TryAdd(name, entry)) names.Add(name);
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException)
        {
            _zip?.Dispose();
            if (!leaveOpen) stream.Dispose();
            throw new MediatorDiTException($"{sourceName}: is not a readable .npz (zip) archive ({ex.Message.TrimEnd('.')}).", ex);
        }
        Names = names;
    }

    /// <summary>Whether the archive holds an array called <paramref name="name"/>.</summary>
    /// <param name="name">The array name, without ".npy".</param>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>Dtype and shape of an array, from its header alone.</summary>
    public NpyHeader GetHeader(string name)
    {
        using NpyArrayReader reader = OpenArray(name);
        return reader.Header;
    }

    /// <summary>The whole array (at most 2 GB, and at most <see cref="InputLimits.MaxArrayElements"/> elements).</summary>
    public StoredTensor Read(string name)
    {
        using NpyArrayReader reader = OpenArray(name);
        NpyHeader header = reader.Header;
        if (header.ElementCount > _limits.MaxArrayElements)
            throw _limits.ArrayTooLarge(Path, $"array '{name}' as {header}", header.ElementCount);
        if (header.ByteCount > Array.MaxLength)
            throw new MediatorDiTException($"{Source(name)}: the array {header} holds {header.ByteCount} bytes, more than one buffer can; read it in parts with OpenArray.");
        var data = new byte[header.ByteCount];
        reader.ReadBytes(data);
        return new StoredTensor(header.DType, header.Shape, data);
    }

    /// <summary>Opens an array for reading in parts; dispose the reader before opening another.</summary>
    public NpyArrayReader OpenArray(string name)
    {
        if (!_entries.TryGetValue(name, out ZipArchiveEntry? entry))
            throw new MediatorDiTException($"{Path}: has no array '{name}' (it has {(Names.Count == 0 ? "none" : string.Join(", ", Names.Select(n => $"'{n}'")))}).");
        Stream data;
        try
        {
            data = entry.Open();
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or NotSupportedException)
        {
            throw new MediatorDiTException($"{Source(name)}: cannot be opened ({ex.Message.TrimEnd('.')}).", ex);
        }
        try
        {
            return new NpyArrayReader(data, Source(name), entry.Crc32, entry.Length);
        }
        catch
        {
            data.Dispose();
            throw;
        }
    }

    private string Source(string name) => $"{Path} (array '{name}')";

    /// <summary>Closes the archive, and the stream unless it was opened with leaveOpen.</summary>
    public void Dispose()
    {
        _zip.Dispose();
        if (!_leaveOpen) _stream.Dispose();
    }
}
