using System.Text.Encodings.Web;
using System.Text.Json;

namespace MediatorDiT.Data;

/// <summary>
/// manifest.json of a dataset cache folder: what was cached (dataset, package and its integrity),
/// the image geometry, per-class counts and SHA-256 checksums of images.u8 and labels.u8. It is
/// written last, so a folder with a manifest holds a complete cache.
/// </summary>
internal sealed record ImageCacheManifest(
    string Dataset,
    string Package,
    string PackageIntegrity,
    int Height,
    int Width,
    int[] ClassCounts,
    string Split,
    int TrainCount,
    int TestCount,
    string ImagesSha256,
    string LabelsSha256)
{
    /// <summary>Informational only: empty entries of the package's class files that were dropped.</summary>
    public int EmptyEntriesSkipped { get; init; }

    public const string FileName = "manifest.json";
    public const string ImagesFileName = "images.u8";
    public const string LabelsFileName = "labels.u8";

    /// <summary>Bumped whenever the cache layout changes; an older cache is then rebuilt.</summary>
    public const int FormatVersion = 1;

    public int Count => ClassCounts.Sum();

    public byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteNumber("format_version", FormatVersion);
            json.WriteString("dataset", Dataset);
            json.WriteString("package", Package);
            json.WriteString("package_integrity", PackageIntegrity);
            json.WriteString("layout", "images.u8: uint8 (count, height, width) row-major, sorted by class then package order; labels.u8: uint8 (count)");
            json.WriteNumber("count", Count);
            json.WriteNumber("height", Height);
            json.WriteNumber("width", Width);
            json.WriteStartArray("class_counts");
            foreach (int c in ClassCounts) json.WriteNumberValue(c);
            json.WriteEndArray();
            json.WriteString("split", Split);
            json.WriteNumber("train_count", TrainCount);
            json.WriteNumber("test_count", TestCount);
            json.WriteNumber("empty_entries_skipped", EmptyEntriesSkipped);
            json.WriteString("images_sha256", ImagesSha256);
            json.WriteString("labels_sha256", LabelsSha256);
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>Parses a manifest; null with <paramref name="problem"/> set when it is unreadable or of another format version.</summary>
    public static ImageCacheManifest? TryParse(ReadOnlyMemory<byte> bytes, out string problem)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(bytes);
            JsonElement root = document.RootElement;
            int version = root.GetProperty("format_version").GetInt32();
            if (version != FormatVersion)
            {
                problem = $"it has cache format version {version}, this library writes version {FormatVersion}";
                return null;
            }
            problem = "";
            return new ImageCacheManifest(
                root.GetProperty("dataset").GetString()!,
                root.GetProperty("package").GetString()!,
                root.GetProperty("package_integrity").GetString()!,
                root.GetProperty("height").GetInt32(),
                root.GetProperty("width").GetInt32(),
                root.GetProperty("class_counts").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                root.GetProperty("split").GetString()!,
                root.GetProperty("train_count").GetInt32(),
                root.GetProperty("test_count").GetInt32(),
                root.GetProperty("images_sha256").GetString()!,
                root.GetProperty("labels_sha256").GetString()!);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            problem = $"its {FileName} is unreadable ({ex.Message.TrimEnd('.')})";
            return null;
        }
    }
}
