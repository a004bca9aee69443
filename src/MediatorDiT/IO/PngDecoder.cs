using System.Buffers.Binary;
using System.IO.Compression;

namespace MediatorDiT.IO;

/// <summary>
/// Reads PNG files as other encoders write them: every colour type (grey, RGB, palette, grey +
/// alpha, RGBA), bit depths 1 to 16, the five row filters, image data split over any number of
/// IDAT chunks, and Adam7 interlacing. Every chunk's CRC is checked; ancillary chunks (gamma, text,
/// ...) are skipped, except tRNS, which becomes an alpha channel. The result is always 8-bit:
/// 16-bit samples are rounded to the nearest of 256 levels (v / 257), lower depths are scaled up
/// to 0..255 (a 1-bit 1 becomes 255); palettes are expanded. Grey (+ alpha) images with alpha come
/// out as RGBA so that <see cref="DecodedImage.Channels"/> is always 1, 3 or 4. An image whose header
/// declares more pixels than <see cref="InputLimits.MaxImagePixels"/> is refused before any image data is
/// read, and inflating stops once the data runs past what the header declares.
/// </summary>
public static class PngDecoder
{
    /// <summary>Adam7: the first column and row of each pass, and the steps between its pixels.</summary>
    private static readonly (int X0, int Y0, int DX, int DY)[] Adam7Passes =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    private static readonly (int X0, int Y0, int DX, int DY)[] SinglePass = [(0, 0, 1, 1)];

    /// <summary>Inflated bytes beyond the declared image that are still tolerated (some encoders pad), as libpng does.</summary>
    private const int TolerableSurplus = 1 << 16;

    /// <summary>Decodes the PNG file at <paramref name="path"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">bounds on the declared size; <see cref="InputLimits.Default"/> when null</param>
    /// <exception cref="MediatorDiTException">The file is unreadable, no PNG, corrupt or exceeds the limits.</exception>
    public static DecodedImage Read(string path, InputLimits? limits = null)
    {
        using FileStream stream = InputFile.OpenStream(path);
        return Decode(stream, path, limits);
    }

    /// <summary>Decodes PNG bytes; <paramref name="sourceName"/> names them in error messages.</summary>
    public static DecodedImage Decode(byte[] png, string sourceName, InputLimits? limits = null) =>
        Decode(new MemoryStream(png, writable: false), sourceName, limits);

    /// <summary>Decodes a PNG from the stream's current position up to its IEND chunk.</summary>
    public static DecodedImage Decode(Stream stream, string sourceName, InputLimits? limits = null)
    {
        PngContents contents = ReadChunks(stream, sourceName, limits ?? InputLimits.Default);
        try
        {
            return DecodePixels(contents, sourceName);
        }
        catch (InvalidDataException ex)
        {
            throw new MediatorDiTException($"{sourceName}: the compressed image data is corrupt ({ex.Message.TrimEnd('.')}).", ex);
        }
    }

    /// <summary>What the chunks say, before decompression.</summary>
    private sealed class PngContents
    {
        public PngHeader Header;
        public byte[]? Palette;             // RGB triples
        public byte[]? Transparency;        // the raw tRNS chunk
        public readonly MemoryStream ImageData = new();
    }

    private static PngContents ReadChunks(Stream stream, string source, InputLimits limits)
    {
        var reader = new ChunkStreamReader(stream, source);
        Span<byte> signature = stackalloc byte[8];
        int got = reader.ReadUpTo(signature);
        if (got == 0)
            throw new MediatorDiTException($"{source}: is empty, not a PNG file.");
        if (!signature[..got].SequenceEqual(PngChunk.Signature[..got]))
            throw new MediatorDiTException($"{source}: does not start with the PNG signature (it is not a PNG file, or it is corrupt).");
        if (got < 8)
            throw new MediatorDiTException($"{source}: ends after {got} bytes, inside the PNG signature (the file is truncated).");

        var contents = new PngContents();
        bool haveHeader = false;
        Span<byte> prefix = stackalloc byte[8];
        Span<byte> stored = stackalloc byte[4];
        while (true)
        {
            long chunkStart = reader.Position;
            if (reader.ReadUpTo(prefix) < 8)
                throw new MediatorDiTException($"{source}: ends at byte {reader.Position} without an IEND chunk (the file is truncated).");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(prefix);
            ReadOnlySpan<byte> type = prefix[4..];
            string name = PngChunk.Name(type);
            if (!PngChunk.IsValidType(type))
                throw new MediatorDiTException($"{source}: byte {chunkStart} should start a chunk, but its type '{name}' is not four letters (the file is corrupt).");
            if (length > PngChunk.MaxLength)
                throw new MediatorDiTException($"{source}: the {name} chunk at byte {chunkStart} claims {length} bytes, more than a PNG chunk may hold (the file is corrupt).");
            bool isHeader = type.SequenceEqual("IHDR"u8);
            if (!haveHeader && !isHeader)
                throw new MediatorDiTException($"{source}: the first chunk is {name}, but a PNG file must start with IHDR (the file is corrupt).");

            byte[]? kept = null;
            Stream? sink = null;
            if (isHeader)
            {
                if (haveHeader)
                    throw new MediatorDiTException($"{source}: has a second IHDR chunk at byte {chunkStart} (the file is corrupt).");
                if (length != PngHeader.Length)
                    throw new MediatorDiTException($"{source}: the IHDR chunk has {length} bytes instead of {PngHeader.Length} (the file is corrupt).");
                kept = new byte[length];
            }
            else if (type.SequenceEqual("PLTE"u8))
            {
                if (length % 3 != 0 || length is 0 or > 256 * 3)
                    throw new MediatorDiTException($"{source}: the PLTE chunk has {length} bytes; a palette holds 1 to 256 RGB entries of 3 bytes (the file is corrupt).");
                kept = new byte[length];
            }
            else if (type.SequenceEqual("tRNS"u8))
            {
                if (length <= 256) kept = new byte[length]; // longer ones are invalid for every colour type and skipped
            }
            else if (type.SequenceEqual("IDAT"u8))
            {
                sink = contents.ImageData;
            }
            else if (!type.SequenceEqual("IEND"u8) && PngChunk.IsCritical(type))
            {
                throw new MediatorDiTException($"{source}: has a critical chunk '{name}' at byte {chunkStart} that this decoder does not support.");
            }

            uint crc = reader.ReadData(type, length, name, kept, sink);
            if (reader.ReadUpTo(stored) < 4)
                throw new MediatorDiTException($"{source}: ends at byte {reader.Position}, inside the CRC of the {name} chunk (the file is truncated).");
            uint expected = BinaryPrimitives.ReadUInt32BigEndian(stored);
            if (crc != expected)
                throw new MediatorDiTException($"{source}: the {name} chunk at byte {chunkStart} fails its CRC check (stored 0x{expected:X8}, computed 0x{crc:X8}); the file is corrupt.");

            if (isHeader)
            {
                contents.Header = PngHeader.Parse(kept, source);
                // Checked here, before a byte of image data is read or inflated.
                if ((long)contents.Header.Width * contents.Header.Height > limits.MaxImagePixels)
                    throw limits.ImageTooLarge(source, contents.Header.Width, contents.Header.Height);
                haveHeader = true;
            }
            else if (type.SequenceEqual("PLTE"u8)) contents.Palette = kept;
            else if (type.SequenceEqual("tRNS"u8)) contents.Transparency = kept;
            else if (type.SequenceEqual("IEND"u8)) break;
        }

        if (contents.ImageData.Length == 0)
            throw new MediatorDiTException($"{source}: has no image data (no IDAT chunk).");
        if (contents.Header.ColourType == 3 && contents.Palette is null)
            throw new MediatorDiTException($"{source}: is a palette image without a PLTE chunk (the file is corrupt).");
        return contents;
    }

    private static DecodedImage DecodePixels(PngContents contents, string source)
    {
        PngHeader header = contents.Header;
        var pixels = new PixelExpander(header, contents.Palette, contents.Transparency, source);
        long outputBytes = (long)header.Width * header.Height * pixels.OutputChannels;
        long widestRow = header.RowBytes(header.Width) + 1;
        if (outputBytes > Array.MaxLength || widestRow > Array.MaxLength)
            throw new MediatorDiTException($"{source}: a {header.Width} x {header.Height} image is too large to decode into one array.");
        var output = new byte[outputBytes];

        contents.ImageData.Position = 0;
        using var inflater = new ZLibStream(contents.ImageData, CompressionMode.Decompress);
        var current = new byte[widestRow];
        var prior = new byte[widestRow];
        int bpp = header.FilterStride;
        var passes = header.Interlaced ? Adam7Passes : SinglePass;
        for (int p = 0; p < passes.Length; p++)
        {
            (int x0, int y0, int dx, int dy) = passes[p];
            // Passes without a pixel (tiny images) store nothing at all, not even filter bytes.
            int columns = header.Width > x0 ? (header.Width - x0 + dx - 1) / dx : 0;
            int rows = header.Height > y0 ? (header.Height - y0 + dy - 1) / dy : 0;
            if (columns == 0 || rows == 0) continue;
            int rowBytes = (int)header.RowBytes(columns);
            Span<byte> priorRow = prior.AsSpan(1, rowBytes);
            priorRow.Clear();
            for (int r = 0; r < rows; r++)
            {
                Span<byte> stored = current.AsSpan(0, rowBytes + 1);
                if (inflater.ReadAtLeast(stored, stored.Length, throwOnEndOfStream: false) < stored.Length)
                    throw new MediatorDiTException($"{source}: the image data ends before row {y0 + r * dy}{(header.Interlaced ? $" of interlace pass {p + 1}" : "")} (the file is truncated or corrupt).");
                Span<byte> row = stored[1..];
                if (!PngFilters.TryReverse(stored[0], row, priorRow, bpp))
                    throw new MediatorDiTException($"{source}: row {y0 + r * dy}{(header.Interlaced ? $" of interlace pass {p + 1}" : "")} has filter type {stored[0]}; only 0 to 4 exist (the file is corrupt).");
                pixels.Expand(row, columns, output, y0 + r * dy, x0, dx);
                (current, prior) = (prior, current);
                priorRow = prior.AsSpan(1, rowBytes);
            }
        }
        // Reading on to the end makes zlib verify the Adler-32 checksum of the image data; a little
        // surplus is tolerated, as libpng does, but a stream inflating far past the image is not read on.
        Span<byte> rest = stackalloc byte[4096];
        long surplus = 0;
        for (int n; (n = inflater.Read(rest)) > 0;)
        {
            surplus += n;
            if (surplus > TolerableSurplus)
                throw new MediatorDiTException($"{source}: the image data inflates to over {TolerableSurplus} bytes more than the {header.Width} x {header.Height} image its header declares (the file is corrupt).");
        }
        return new DecodedImage(header.Width, header.Height, pixels.OutputChannels, output);
    }

    /// <summary>Reads chunk framing from the stream, counting bytes for messages.</summary>
    private sealed class ChunkStreamReader(Stream stream, string source)
    {
        private readonly byte[] _block = new byte[1 << 16];

        public long Position { get; private set; }

        /// <summary>Fills as much of <paramref name="buffer"/> as the stream has; returns the count.</summary>
        public int ReadUpTo(Span<byte> buffer)
        {
            int n = ReadStream(buffer);
            Position += n;
            return n;
        }

        /// <summary>
        /// Reads a chunk's data in blocks (so a corrupt length cannot make it allocate gigabytes up front),
        /// into <paramref name="kept"/> or <paramref name="sink"/> or nowhere; returns the CRC of type and data.
        /// </summary>
        public uint ReadData(ReadOnlySpan<byte> type, uint length, string name, byte[]? kept, Stream? sink)
        {
            uint crc = Crc32.Compute(type);
            long remaining = length;
            int keptAt = 0;
            while (remaining > 0)
            {
                Span<byte> block = _block.AsSpan(0, (int)Math.Min(remaining, _block.Length));
                int n = ReadStream(block);
                Position += n;
                if (n < block.Length)
                    throw new MediatorDiTException($"{source}: ends at byte {Position}, inside the {name} chunk, {remaining - n} bytes short of its end (the file is truncated).");
                crc = Crc32.Append(crc, block);
                if (kept is not null) block.CopyTo(kept.AsSpan(keptAt));
                sink?.Write(block);
                keptAt += n;
                remaining -= n;
            }
            return crc;
        }

        private int ReadStream(Span<byte> buffer)
        {
            try
            {
                return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            }
            catch (IOException ex)
            {
                throw new MediatorDiTException($"{source}: cannot be read ({ex.Message.TrimEnd('.')}).", ex);
            }
        }
    }

    /// <summary>Turns unfiltered stored rows into 8-bit output pixels.</summary>
    private sealed class PixelExpander
    {
        private readonly PngHeader _header;
        private readonly string _source;
        private readonly byte[] _paletteRgb = [];
        private readonly byte[] _paletteAlpha = [];
        private readonly int _paletteCount;
        private readonly bool _hasTransparentColour;
        private readonly int[] _transparentSamples = new int[3]; // the tRNS grey or RGB value at the image bit depth

        public int OutputChannels { get; }

        public PixelExpander(PngHeader header, byte[]? palette, byte[]? transparency, string source)
        {
            _header = header;
            _source = source;
            int sampleMask = (1 << header.BitDepth) - 1;
            switch (header.ColourType)
            {
                case 0:
                    _hasTransparentColour = transparency is { Length: 2 };
                    if (_hasTransparentColour) _transparentSamples[0] = BinaryPrimitives.ReadUInt16BigEndian(transparency) & sampleMask;
                    OutputChannels = _hasTransparentColour ? 4 : 1;
                    break;
                case 2:
                    _hasTransparentColour = transparency is { Length: 6 };
                    if (_hasTransparentColour)
                        for (int k = 0; k < 3; k++) _transparentSamples[k] = BinaryPrimitives.ReadUInt16BigEndian(transparency.AsSpan(2 * k)) & sampleMask;
                    OutputChannels = _hasTransparentColour ? 4 : 3;
                    break;
                case 3:
                    _paletteRgb = palette!;
                    _paletteCount = palette!.Length / 3;
                    _paletteAlpha = new byte[_paletteCount];
                    _paletteAlpha.AsSpan().Fill(255);
                    // Entries past the palette's end would be invalid; they are ignored, as libpng does.
                    if (transparency is { Length: > 0 })
                        transparency.AsSpan(0, Math.Min(transparency.Length, _paletteCount)).CopyTo(_paletteAlpha);
                    OutputChannels = transparency is { Length: > 0 } ? 4 : 3;
                    break;
                default: // 4 and 6 carry alpha; a tRNS chunk is not allowed with them and is ignored
                    OutputChannels = 4;
                    break;
            }
        }

        /// <summary>Writes <paramref name="count"/> pixels of output row <paramref name="y"/>, at columns x0, x0 + dx, ...</summary>
        public void Expand(ReadOnlySpan<byte> row, int count, byte[] output, int y, int x0, int dx)
        {
            int outC = OutputChannels;
            long o = ((long)y * _header.Width + x0) * outC;
            long step = (long)dx * outC;
            int depth = _header.BitDepth;
            // 8-bit grey, RGB or RGBA without a tRNS colour is stored as it is output.
            bool sameLayout = depth == 8 && _header.SamplesPerPixel == outC && _header.ColourType != 3;
            if (sameLayout && dx == 1)
            {
                row[..(count * outC)].CopyTo(output.AsSpan((int)o, count * outC));
                return;
            }
            switch (_header.ColourType)
            {
                case 0:
                    for (int i = 0; i < count; i++, o += step)
                    {
                        int g = Sample(row, i, depth);
                        byte v = ToByte(g, depth);
                        if (outC == 1)
                        {
                            output[o] = v;
                            continue;
                        }
                        output[o] = v; output[o + 1] = v; output[o + 2] = v;
                        output[o + 3] = g == _transparentSamples[0] ? (byte)0 : (byte)255;
                    }
                    break;
                case 2:
                    for (int i = 0; i < count; i++, o += step)
                    {
                        int r = Sample(row, 3 * i, depth), g = Sample(row, 3 * i + 1, depth), b = Sample(row, 3 * i + 2, depth);
                        output[o] = ToByte(r, depth); output[o + 1] = ToByte(g, depth); output[o + 2] = ToByte(b, depth);
                        if (outC == 4)
                            output[o + 3] = r == _transparentSamples[0] && g == _transparentSamples[1] && b == _transparentSamples[2] ? (byte)0 : (byte)255;
                    }
                    break;
                case 3:
                    for (int i = 0; i < count; i++, o += step)
                    {
                        int index = Sample(row, i, depth);
                        if (index >= _paletteCount)
                            throw new MediatorDiTException($"{_source}: pixel ({x0 + i * dx}, {y}) uses palette entry {index}, but the palette has {_paletteCount} entries (the file is corrupt).");
                        output[o] = _paletteRgb[3 * index]; output[o + 1] = _paletteRgb[3 * index + 1]; output[o + 2] = _paletteRgb[3 * index + 2];
                        if (outC == 4) output[o + 3] = _paletteAlpha[index];
                    }
                    break;
                case 4:
                    for (int i = 0; i < count; i++, o += step)
                    {
                        byte v = ToByte(Sample(row, 2 * i, depth), depth);
                        output[o] = v; output[o + 1] = v; output[o + 2] = v;
                        output[o + 3] = ToByte(Sample(row, 2 * i + 1, depth), depth);
                    }
                    break;
                default:
                    for (int i = 0; i < count; i++, o += step)
                        for (int c = 0; c < 4; c++) output[o + c] = ToByte(Sample(row, 4 * i + c, depth), depth);
                    break;
            }
        }

        /// <summary>Sample number <paramref name="index"/> of a row: packed from the high bits down below 8 bits, big-endian at 16.</summary>
        private static int Sample(ReadOnlySpan<byte> row, int index, int depth)
        {
            switch (depth)
            {
                case 8: return row[index];
                case 16: return row[2 * index] << 8 | row[2 * index + 1];
                default:
                    int bit = index * depth;
                    return (row[bit >> 3] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
            }
        }

        /// <summary>A sample scaled to 0..255: v * 255 / (2^depth - 1), rounded to nearest (exact below 16 bits).</summary>
        private static byte ToByte(int sample, int depth) => depth switch
        {
            8 => (byte)sample,
            16 => (byte)((sample + 128) / 257),
            4 => (byte)(sample * 17),
            2 => (byte)(sample * 85),
            _ => (byte)(sample * 255),
        };
    }
}
