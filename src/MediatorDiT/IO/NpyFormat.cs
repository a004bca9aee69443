using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace MediatorDiT.IO;

/// <summary>
/// NumPy's .npy format: the magic "\x93NUMPY", a version, the header length, then a Python dict
/// literal such as <c>{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4, 4, 3), }</c> padded
/// with spaces and ended by '\n' so the data starts on a 64-byte boundary, then the raw elements.
/// Headers are written byte for byte as numpy (1.24 and later) writes them, including the spare
/// spaces it leaves for the first axis to grow; version 1.0 unless the header needs more than
/// 65535 bytes (then 2.0). Reading accepts versions 1.0, 2.0 and 3.0, little-endian numeric dtypes
/// (bool, u1..u8, i1..i8, f2, f4, f8) in C order; Fortran order, big-endian data, object, string
/// and structured arrays are rejected with a clear error.
/// </summary>
public static class NpyFormat
{
    internal static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    private const int Alignment = 64;

    /// <summary>numpy pads the header so that the first axis can grow to this many digits in place.</summary>
    private const int GrowthAxisMaxDigits = 21;

    /// <summary>Headers longer than this are taken as corruption rather than read.</summary>
    private const int MaxHeaderLength = 1 << 24;

    /// <summary>The numpy dtype string, e.g. '|u1' for uint8 and '&lt;f4' for little-endian float32.</summary>
    public static string Descr(DType dtype) => dtype switch
    {
        DType.Bool => "|b1",
        DType.U8 => "|u1",
        DType.I8 => "|i1",
        DType.I16 => "<i2",
        DType.U16 => "<u2",
        DType.F16 => "<f2",
        DType.I32 => "<i4",
        DType.U32 => "<u4",
        DType.F32 => "<f4",
        DType.F64 => "<f8",
        DType.I64 => "<i8",
        DType.U64 => "<u8",
        _ => throw new MediatorDiTException($"{dtype.SafeTensorsName()} has no NumPy dtype, so it cannot be stored in a .npy array."),
    };

    /// <summary>The complete header (magic to '\n') for an array of this dtype and shape.</summary>
    public static byte[] Header(DType dtype, ReadOnlySpan<int> shape)
    {
        var text = new StringBuilder();
        text.Append("{'descr': '").Append(Descr(dtype)).Append("', 'fortran_order': False, 'shape': ");
        AppendTuple(text, shape);
        text.Append(", }");
        if (shape.Length > 0)
            text.Append(' ', Math.Max(0, GrowthAxisMaxDigits - shape[0].ToString(CultureInfo.InvariantCulture).Length));

        // Version 1.0 stores the header length in 2 bytes, 2.0 in 4; padding always adds 1..64 spaces.
        byte[] dict = Encoding.Latin1.GetBytes(text.ToString());
        int version = 1, prefix = Magic.Length + 2 + 2;
        int padding = Alignment - (prefix + dict.Length + 1) % Alignment;
        if (dict.Length + 1 + padding > ushort.MaxValue)
        {
            version = 2;
            prefix = Magic.Length + 2 + 4;
            padding = Alignment - (prefix + dict.Length + 1) % Alignment;
        }
        int headerLength = dict.Length + padding + 1;
        var header = new byte[prefix + headerLength];
        Magic.CopyTo(header);
        header[6] = (byte)version;
        header[7] = 0;
        if (version == 1) BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)headerLength);
        else BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)headerLength);
        dict.CopyTo(header, prefix);
        header.AsSpan(prefix + dict.Length, padding).Fill((byte)' ');
        header[^1] = (byte)'\n';
        return header;
    }

    /// <summary>Python's repr of a tuple of ints: "()", "(5,)", "(2, 4)".</summary>
    private static void AppendTuple(StringBuilder text, ReadOnlySpan<int> shape)
    {
        text.Append('(');
        for (int i = 0; i < shape.Length; i++)
        {
            if (i > 0) text.Append(", ");
            text.Append(shape[i].ToString(CultureInfo.InvariantCulture));
        }
        if (shape.Length == 1) text.Append(',');
        text.Append(')');
    }

    /// <summary>Writes a .npy file atomically.</summary>
    public static void Write(string path, StoredTensor array)
    {
        byte[] header = Header(array.DType, array.Shape);
        AtomicFile.Write(path, stream =>
        {
            stream.Write(header);
            stream.Write(array.Bytes.Span);
        });
    }

    /// <summary>Writes <paramref name="array"/> as .npy bytes (header, then data) at the stream's position.</summary>
    /// <param name="output">The destination, left open.</param>
    /// <param name="array">The array.</param>
    public static void Write(Stream output, StoredTensor array)
    {
        output.Write(Header(array.DType, array.Shape));
        output.Write(array.Bytes.Span);
    }

    /// <summary>Reads the .npy file at <paramref name="path"/> whole.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">bounds on the array's size; <see cref="InputLimits.Default"/> when null</param>
    /// <exception cref="MediatorDiTException">The file is unreadable, malformed, truncated or exceeds the limits.</exception>
    public static StoredTensor Read(string path, InputLimits? limits = null)
    {
        using FileStream stream = InputFile.OpenStream(path);
        return Read(stream, path, limits);
    }

    /// <summary>
    /// Reads one array from the stream's position; <paramref name="sourceName"/> names it in errors. Arrays
    /// of more than <see cref="InputLimits.MaxArrayElements"/> elements, or (seekable streams) more bytes
    /// than the stream holds, are refused before anything is allocated.
    /// </summary>
    public static StoredTensor Read(Stream stream, string sourceName, InputLimits? limits = null)
    {
        limits ??= InputLimits.Default;
        NpyHeader header = ReadHeader(stream, sourceName);
        if (header.ElementCount > limits.MaxArrayElements)
            throw limits.ArrayTooLarge(sourceName, $"an array {header}", header.ElementCount);
        if (stream.CanSeek && stream.Length - stream.Position < header.ByteCount)
            throw new MediatorDiTException($"{sourceName}: the array {header} needs {header.ByteCount} data bytes, but only {stream.Length - stream.Position} follow its header (the file is truncated).");
        if (header.ByteCount > Array.MaxLength)
            throw new MediatorDiTException($"{sourceName}: the array {header} holds {header.ByteCount} bytes, more than one buffer can; read it in parts with NpzReader.OpenArray.");
        var data = new byte[header.ByteCount];
        ReadExactly(stream, data, sourceName, $"the array data ({header.ByteCount} bytes after a {header.DataOffset}-byte header)");
        return new StoredTensor(header.DType, header.Shape, data);
    }

    /// <summary>Reads and checks the header, leaving the stream at the first data byte.</summary>
    public static NpyHeader ReadHeader(Stream stream, string sourceName)
    {
        Span<byte> start = stackalloc byte[8];
        int got = ReadUpTo(stream, start, sourceName);
        if (!start[..Math.Min(got, 6)].SequenceEqual(Magic[..Math.Min(got, 6)]) || got == 0)
            throw new MediatorDiTException($"{sourceName}: does not start with the .npy magic \\x93NUMPY (it is not a NumPy array file).");
        if (got < 8)
            throw new MediatorDiTException($"{sourceName}: ends after {got} bytes, inside the .npy header (the file is truncated).");
        int major = start[6], minor = start[7];
        if (major is < 1 or > 3 || minor != 0)
            throw new MediatorDiTException($"{sourceName}: has .npy format version {major}.{minor}; versions 1.0, 2.0 and 3.0 are supported.");
        int lengthBytes = major == 1 ? 2 : 4;
        Span<byte> lengthField = stackalloc byte[4];
        ReadExactly(stream, lengthField[..lengthBytes], sourceName, "the header length");
        long length = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(lengthField) : BinaryPrimitives.ReadUInt32LittleEndian(lengthField);
        if (length > MaxHeaderLength)
            throw new MediatorDiTException($"{sourceName}: claims a {length}-byte .npy header, which is not plausible (the file is corrupt).");
        var headerBytes = new byte[length];
        ReadExactly(stream, headerBytes, sourceName, $"the {length}-byte header");
        string text = major == 3 ? Encoding.UTF8.GetString(headerBytes) : Encoding.Latin1.GetString(headerBytes);
        return ParseHeader(text, sourceName, 8 + lengthBytes + length);
    }

    /// <summary>Parses the header dict and checks that the array is one this library can hold.</summary>
    internal static NpyHeader ParseHeader(string text, string source, long dataOffset)
    {
        var parser = new DictLiteralParser(text, source);
        Dictionary<string, object> entries = parser.ParseDict();
        foreach (string key in entries.Keys)
            if (key is not ("descr" or "fortran_order" or "shape"))
                throw new MediatorDiTException($"{source}: the .npy header has an unexpected key '{key}' (expected descr, fortran_order and shape).");
        if (!entries.TryGetValue("descr", out object? descrValue) || !entries.TryGetValue("fortran_order", out object? fortranValue) || !entries.TryGetValue("shape", out object? shapeValue))
            throw new MediatorDiTException($"{source}: the .npy header lacks one of descr, fortran_order and shape (it reads {Quote(text)}).");
        if (descrValue is not string descr)
            throw new MediatorDiTException($"{source}: the array has a structured dtype ({DescribeValue(descrValue)}); only plain numeric arrays are supported.");
        if (fortranValue is not bool fortranOrder)
            throw new MediatorDiTException($"{source}: the .npy header's fortran_order is not True or False.");
        if (shapeValue is not List<object> items || !items.All(item => item is long))
            throw new MediatorDiTException($"{source}: the .npy header's shape is not a tuple of integers.");

        long[] axes = items.Cast<long>().ToArray();
        var shape = new int[axes.Length];
        for (int i = 0; i < axes.Length; i++)
        {
            if (axes[i] is < 0 or > int.MaxValue)
                throw new MediatorDiTException($"{source}: the .npy shape has an axis of {axes[i]}, outside 0..{int.MaxValue}.");
            shape[i] = (int)axes[i];
        }
        if (fortranOrder && shape.Count(d => d > 1) > 1)
            throw new MediatorDiTException($"{source}: the array is stored in Fortran (column-major) order; only C order is supported (save it with np.ascontiguousarray).");
        DType dtype = ParseDescr(descr, source);
        try
        {
            return new NpyHeader(dtype, shape, dataOffset);
        }
        catch (OverflowException)
        {
            throw new MediatorDiTException($"{source}: the .npy shape ({StoredTensor.FormatShape(shape)}) has more elements than can be counted.");
        }
    }

    /// <summary>Header text for a message: trimmed, control characters shown as '?', at most 200 characters, quoted.</summary>
    private static string Quote(string text)
    {
        string trimmed = text.Trim();
        var shown = new StringBuilder(Math.Min(trimmed.Length, 200) + 5);
        foreach (char c in trimmed.Length > 200 ? trimmed[..200] : trimmed) shown.Append(char.IsControl(c) ? '?' : c);
        return $"\"{shown}{(trimmed.Length > 200 ? "..." : "")}\"";
    }

    private static string DescribeValue(object value) => value switch
    {
        List<object> => "a list of fields",
        Dictionary<string, object> => "a dict",
        _ => value.ToString() ?? "",
    };

    private static DType ParseDescr(string descr, string source)
    {
        char order = descr.Length > 0 && descr[0] is '<' or '>' or '|' or '=' ? descr[0] : '|';
        string code = order == '|' && !(descr.Length > 0 && descr[0] == '|') ? descr : descr[1..];
        DType? dtype = code switch
        {
            "b1" or "?" => DType.Bool,
            "u1" or "B" => DType.U8,
            "i1" or "b" => DType.I8,
            "i2" => DType.I16,
            "u2" => DType.U16,
            "f2" => DType.F16,
            "i4" => DType.I32,
            "u4" => DType.U32,
            "f4" => DType.F32,
            "f8" => DType.F64,
            "i8" => DType.I64,
            "u8" => DType.U64,
            _ => null,
        };
        if (code.StartsWith('O'))
            throw new MediatorDiTException($"{source}: the array holds Python objects (dtype '{descr}'), which cannot be read without running Python; only numeric arrays are supported.");
        if (dtype is null)
            throw new MediatorDiTException($"{source}: the array has dtype '{descr}', which is not supported (bool, u1..u8, i1..i8, f2, f4 and f8 are).");
        if (order == '>' && dtype.Value.ElementSize() > 1)
            throw new MediatorDiTException($"{source}: the array is big-endian (dtype '{descr}'); only little-endian data is supported (convert it with arr.astype(arr.dtype.newbyteorder('<'))).");
        return dtype.Value;
    }

    private static int ReadUpTo(Stream stream, Span<byte> buffer, string source)
    {
        try
        {
            return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            throw new MediatorDiTException($"{source}: cannot be read ({ex.Message.TrimEnd('.')}).", ex);
        }
    }

    internal static void ReadExactly(Stream stream, Span<byte> buffer, string source, string what)
    {
        int got = ReadUpTo(stream, buffer, source);
        if (got < buffer.Length)
            throw new MediatorDiTException($"{source}: ends {buffer.Length - got} bytes short of the end of {what} (the file is truncated).");
    }

    /// <summary>
    /// The subset of Python literals that .npy headers use: a dict with string keys whose values are
    /// strings, True/False, integers (a trailing 'L' from Python 2 allowed) and tuples and lists
    /// of these (lists only occur in structured dtypes, which are rejected).
    /// </summary>
    private sealed class DictLiteralParser(string text, string source)
    {
        private int _pos;

        public Dictionary<string, object> ParseDict()
        {
            var result = new Dictionary<string, object>();
            Expect('{');
            while (true)
            {
                SkipSpace();
                if (Peek() == '}') { _pos++; break; }
                string key = ParseString();
                Expect(':');
                object value = ParseValue();
                if (!result.TryAdd(key, value)) throw Error($"repeats the key '{key}'");
                SkipSpace();
                if (Peek() == ',') { _pos++; continue; }
                Expect('}');
                break;
            }
            SkipSpace();
            if (_pos != text.Length) throw Error("has text after the dict");
            return result;
        }

        private object ParseValue()
        {
            SkipSpace();
            char c = Peek();
            if (c is '\'' or '"') return ParseString();
            if (c == '(') return ParseSequence('(', ')');
            if (c == '[') return ParseSequence('[', ']');
            if (c == '{') { ParseDict(); return new Dictionary<string, object>(); }
            if (Match("True")) return true;
            if (Match("False")) return false;
            if (c is '-' or (>= '0' and <= '9')) return ParseInteger();
            throw Error($"has an unexpected value at character {_pos}");
        }

        private string ParseString()
        {
            SkipSpace();
            char quote = Peek();
            if (quote is not ('\'' or '"')) throw Error($"expects a quoted string at character {_pos}");
            int end = text.IndexOf(quote, _pos + 1);
            if (end < 0) throw Error("has an unterminated string");
            string value = text[(_pos + 1)..end];
            _pos = end + 1;
            return value;
        }

        /// <summary>A tuple or list; .npy shapes are tuples of integers, lists appear in structured dtypes.</summary>
        private List<object> ParseSequence(char open, char close)
        {
            Expect(open);
            var items = new List<object>();
            while (true)
            {
                SkipSpace();
                if (Peek() == close) { _pos++; break; }
                items.Add(ParseValue());
                SkipSpace();
                if (Peek() == ',') { _pos++; continue; }
                Expect(close);
                break;
            }
            return items;
        }

        private long ParseInteger()
        {
            SkipSpace();
            int start = _pos;
            if (Peek() == '-') _pos++;
            while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
            if (!long.TryParse(text.AsSpan(start, _pos - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
                throw Error($"has an invalid integer at character {start}");
            if (Peek() is 'L' or 'l') _pos++;
            return value;
        }

        private bool Match(string word)
        {
            if (string.CompareOrdinal(text, _pos, word, 0, word.Length) != 0) return false;
            _pos += word.Length;
            return true;
        }

        private void Expect(char c)
        {
            SkipSpace();
            if (Peek() != c) throw Error($"expects '{c}' at character {_pos}");
            _pos++;
        }

        private char Peek() => _pos < text.Length ? text[_pos] : '\0';

        private void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++;
        }

        private MediatorDiTException Error(string what) =>
            new($"{source}: the .npy header {what} (it reads {Quote(text)}).");
    }
}
