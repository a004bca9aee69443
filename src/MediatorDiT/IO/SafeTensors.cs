using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.Win32.SafeHandles;

namespace MediatorDiT.IO;

/// <summary>
/// Reads and writes the safetensors format: an 8-byte little-endian header length N, N bytes of
/// UTF-8 JSON (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}</c>,
/// right-padded with spaces), then one byte buffer the offsets index into. Files are validated as
/// strictly as the reference implementation validates them.
/// </summary>
public static class SafeTensors
{
    /// <summary>The reference implementation's limit on the header size.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private sealed record Entry(string Name, DType DType, int[] Shape, long Begin, long End);

    /// <summary>Reads every tensor of a file into memory (one array per tensor).</summary>
    public static SafeTensorsFile Read(string path)
    {
        using SafeFileHandle handle = InputFile.OpenHandle(path);
        long fileLength = InputFile.Guard(path, () => RandomAccess.GetLength(handle));
        if (fileLength < 8)
            throw Bad(path, $"the file is {fileLength} bytes long, too short for the 8-byte header length of a safetensors file");
        var lengthBytes = new byte[8];
        InputFile.ReadExactly(handle, lengthBytes, 0, path);
        long headerLength = CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes), fileLength, path);

        var header = new byte[headerLength];
        InputFile.ReadExactly(handle, header, 8, path);
        (List<Entry> entries, Dictionary<string, string> metadata) = ParseHeader(header, path);
        long dataStart = 8 + headerLength;
        ValidateLayout(entries, fileLength - dataStart, path);

        var tensors = new OrderedDictionary<string, StoredTensor>(entries.Count, StringComparer.Ordinal);
        foreach (Entry e in entries)
        {
            long byteCount = e.End - e.Begin;
            if (byteCount > Array.MaxLength)
                throw Bad(path, $"tensor '{e.Name}' has {byteCount} bytes, more than one array can hold");
            var bytes = new byte[byteCount];
            InputFile.ReadExactly(handle, bytes, dataStart + e.Begin, path);
            tensors.Add(e.Name, new StoredTensor(e.DType, e.Shape, bytes));
        }
        return new SafeTensorsFile(path, tensors, metadata);
    }

    /// <summary>
    /// Opens a file memory-mapped, validated as <see cref="Read"/> validates it, without reading any
    /// tensor: each tensor's bytes are mapped only while it is converted (<see cref="StoredTensor.CopyTo"/>),
    /// so loading a multi-GiB checkpoint into a model needs the model's memory and about one tensor more.
    /// Dispose the result when done; tensors cannot be read after that.
    /// </summary>
    public static SafeTensorsFile Map(string path)
    {
        long fileLength;
        byte[] header;
        using (SafeFileHandle handle = InputFile.OpenHandle(path))
        {
            fileLength = InputFile.Guard(path, () => RandomAccess.GetLength(handle));
            if (fileLength < 8)
                throw Bad(path, $"the file is {fileLength} bytes long, too short for the 8-byte header length of a safetensors file");
            var lengthBytes = new byte[8];
            InputFile.ReadExactly(handle, lengthBytes, 0, path);
            header = new byte[CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes), fileLength, path)];
            InputFile.ReadExactly(handle, header, 8, path);
        }
        (List<Entry> entries, Dictionary<string, string> metadata) = ParseHeader(header, path);
        long dataStart = 8 + header.LongLength;
        ValidateLayout(entries, fileLength - dataStart, path);

        var mapped = new MappedWeightsFile(path);
        var tensors = new OrderedDictionary<string, StoredTensor>(entries.Count, StringComparer.Ordinal);
        foreach (Entry e in entries)
        {
            long byteCount = e.End - e.Begin;
            if (byteCount > Array.MaxLength)
            {
                mapped.Dispose();
                throw Bad(path, $"tensor '{e.Name}' has {byteCount} bytes, more than one array can hold");
            }
            tensors.Add(e.Name, new StoredTensor(e.DType, e.Shape, new MappedFileRegion(mapped, dataStart + e.Begin, (int)byteCount)));
        }
        return new SafeTensorsFile(path, tensors, metadata, mapped);
    }

    /// <summary>
    /// Parses a whole file already in memory (a download, a memory-mapped view); tensors are slices
    /// of <paramref name="contents"/>, not copies. <paramref name="source"/> names it in errors.
    /// </summary>
    public static SafeTensorsFile Parse(ReadOnlyMemory<byte> contents, string source)
    {
        if (contents.Length < 8)
            throw Bad(source, $"the data is {contents.Length} bytes long, too short for the 8-byte header length of a safetensors file");
        long headerLength = CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(contents.Span), contents.Length, source);
        (List<Entry> entries, Dictionary<string, string> metadata) = ParseHeader(contents.Slice(8, (int)headerLength), source);
        int dataStart = 8 + (int)headerLength;
        ValidateLayout(entries, contents.Length - dataStart, source);

        var tensors = new OrderedDictionary<string, StoredTensor>(entries.Count, StringComparer.Ordinal);
        foreach (Entry e in entries)
            tensors.Add(e.Name, new StoredTensor(e.DType, e.Shape, contents.Slice(dataStart + (int)e.Begin, (int)(e.End - e.Begin))));
        return new SafeTensorsFile(source, tensors, metadata);
    }

    /// <summary>
    /// Writes tensors (and optional string metadata) atomically. Like the reference writer, tensors
    /// are laid out by element size, largest first, then by name, and the header is padded with
    /// spaces so the data starts on an 8-byte boundary.
    /// </summary>
    public static void Write(string path, IReadOnlyDictionary<string, StoredTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = tensors
            .OrderByDescending(kv => kv.Value.DType.ElementSize())
            .ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .ToList();
        foreach (var (name, _) in ordered)
        {
            if (name.Length == 0 || name == MetadataKey)
                throw new MediatorDiTException($"{path}: '{name}' cannot be a tensor name in a safetensors file.");
        }
        byte[] header = BuildHeader(ordered, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)header.Length);
            stream.Write(lengthBytes);
            stream.Write(header);
            foreach (var (_, tensor) in ordered) stream.Write(tensor.Bytes.Span);
        });
    }

    private static byte[] BuildHeader(List<KeyValuePair<string, StoredTensor>> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps non-ASCII names readable; the output is still valid JSON.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in ordered)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", tensor.DType.SafeTensorsName());
                json.WriteStartArray("shape");
                foreach (int d in tensor.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + tensor.ByteCount);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += tensor.ByteCount;
            }
            json.WriteEndObject();
        }
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static long CheckHeaderLength(ulong headerLength, long fileLength, string path)
    {
        if (headerLength > MaxHeaderBytes)
            throw Bad(path, $"the header length field says {headerLength} bytes, more than the format's limit of {MaxHeaderBytes} (the file is corrupt or not a safetensors file)");
        if (8 + (long)headerLength > fileLength)
            throw Bad(path, $"the header length field says {headerLength} bytes but the file has only {fileLength - 8} bytes after it (the file is truncated or not a safetensors file)");
        return (long)headerLength;
    }

    private static (List<Entry>, Dictionary<string, string>) ParseHeader(ReadOnlyMemory<byte> header, string path)
    {
        ReadOnlySpan<byte> span = header.Span;
        if (span.IsEmpty || span[0] != (byte)'{')
            throw Bad(path, span.IsEmpty
                ? "the header is empty, but it must be a JSON object"
                : $"the header must be a JSON object starting with '{{' but starts with byte 0x{span[0]:X2}");
        if (!Utf8.IsValid(span))
            throw Bad(path, "the header is not valid UTF-8");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException ex)
        {
            throw new MediatorDiTException($"{path}: the header is not valid JSON (error near byte {ex.BytePositionInLine} of the header).", ex);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Bad(path, $"the header must be a JSON object but is a JSON {Describe(root.ValueKind)}");

            var entries = new List<Entry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty property in root.EnumerateObject())
            {
                // JsonDocument keeps duplicate properties; the format forbids them.
                if (!seen.Add(property.Name))
                    throw Bad(path, $"the header lists key '{property.Name}' twice");
                if (property.Name == MetadataKey) ReadMetadata(property.Value, metadata, path);
                else entries.Add(ReadEntry(property.Name, property.Value, path));
            }
            return (entries, metadata);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Bad(path, $"'{MetadataKey}' must be a JSON object of strings but is a JSON {Describe(value.ValueKind)}");
        foreach (JsonProperty item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Bad(path, $"'{MetadataKey}' entry '{item.Name}' must be a string but is a JSON {Describe(item.Value.ValueKind)}");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw Bad(path, $"'{MetadataKey}' lists key '{item.Name}' twice");
        }
    }

    private static Entry ReadEntry(string name, JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Bad(path, $"tensor '{name}' must be described by a JSON object but is a JSON {Describe(value.ValueKind)}");

        if (!value.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad(path, $"tensor '{name}' has no string field 'dtype'");
        string dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryParseSafeTensorsName(dtypeName, out DType dtype))
            throw Bad(path, $"tensor '{name}' has dtype '{dtypeName}', which is not one of the supported dtypes ({string.Join(", ", DTypes.All.Select(d => d.SafeTensorsName()))})");

        if (!value.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Bad(path, $"tensor '{name}' has no array field 'shape'");
        var shape = new int[shapeElement.GetArrayLength()];
        int axis = 0;
        foreach (JsonElement d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long size) || size < 0)
                throw Bad(path, $"tensor '{name}' has shape {shapeElement.GetRawText()}, but every axis must be a non-negative integer");
            if (size > int.MaxValue)
                throw Bad(path, $"tensor '{name}' has an axis of size {size}, larger than this library supports ({int.MaxValue})");
            shape[axis++] = (int)size;
        }

        if (!value.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !TryGetOffset(offsets[0], out long begin) || !TryGetOffset(offsets[1], out long end))
            throw Bad(path, $"tensor '{name}' needs 'data_offsets' as two non-negative integers [begin, end]");
        if (end < begin)
            throw Bad(path, $"tensor '{name}' has data_offsets [{begin}, {end}] that end before they begin");

        long expectedBytes;
        try { expectedBytes = checked(StoredTensor.CountElements(shape) * dtype.ElementSize()); }
        catch (OverflowException) { throw Bad(path, $"tensor '{name}' has shape [{StoredTensor.FormatShape(shape)}] whose byte size overflows"); }
        if (end - begin != expectedBytes)
            throw Bad(path, $"tensor '{name}' ({dtype.SafeTensorsName()} [{StoredTensor.FormatShape(shape)}]) needs {expectedBytes} bytes but its data_offsets [{begin}, {end}] span {end - begin}");
        return new Entry(name, dtype, shape, begin, end);
    }

    private static bool TryGetOffset(JsonElement element, out long value)
    {
        value = 0;
        return element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out value) && value >= 0;
    }

    /// <summary>Offsets sorted by position must tile the data buffer exactly: from 0, no gap, no overlap, nothing after.</summary>
    private static void ValidateLayout(List<Entry> entries, long dataLength, string path)
    {
        long expectedBegin = 0;
        Entry? previous = null;
        foreach (Entry e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin > expectedBegin)
                throw Bad(path, previous is null
                    ? $"tensor '{e.Name}' starts at byte {e.Begin} of the data buffer, but the first tensor must start at 0 (offsets must leave no gaps)"
                    : $"tensor '{e.Name}' starts at byte {e.Begin} of the data buffer, leaving a gap after '{previous.Name}' which ends at {expectedBegin} (offsets must leave no gaps)");
            if (e.Begin < expectedBegin)
                throw Bad(path, $"tensor '{e.Name}' (bytes {e.Begin} to {e.End}) overlaps '{previous!.Name}' which ends at byte {expectedBegin}");
            expectedBegin = e.End;
            previous = e;
        }
        if (dataLength < expectedBegin)
            throw Bad(path, $"the tensors need {expectedBegin} data bytes but only {dataLength} follow the header (the file is truncated)");
        if (dataLength > expectedBegin)
            throw Bad(path, $"{dataLength - expectedBegin} bytes follow the last tensor's data (the file size must be 8 + header + data exactly)");
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        JsonValueKind.Object => "object",
        _ => kind.ToString().ToLowerInvariant(),
    };

    private static MediatorDiTException Bad(string path, string problem) =>
        new(string.Create(CultureInfo.InvariantCulture, $"{path}: {problem}."));
}
