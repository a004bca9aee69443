using System.Buffers.Binary;
using System.IO.Compression;

namespace MediatorDiT.IO;

/// <summary>
/// Writes 8-bit PNG images: greyscale (colour type 0), RGB (2) or RGBA (6) from HWC bytes with
/// 1, 3 or 4 channels. Not interlaced. Each row gets whichever of the five filters gives the
/// smallest sum of absolute (signed) filtered bytes, the heuristic libpng uses, before zlib.
/// </summary>
public static class PngEncoder
{
    /// <summary>Image data is split into IDAT chunks of this size (any split is valid; 64 KiB is customary).</summary>
    private const int IdatChunkSize = 1 << 16;

    /// <summary>Writes the image to <paramref name="path"/> atomically (temporary file, then rename).</summary>
    public static void Write(string path, ReadOnlySpan<byte> pixels, int width, int height, int channels,
        CompressionLevel compression = CompressionLevel.Optimal)
    {
        byte[] png = Encode(path, pixels, width, height, channels, compression);
        AtomicFile.Write(path, stream => stream.Write(png));
    }

    /// <summary>Writes <paramref name="image"/> to <paramref name="path"/> atomically.</summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="image">The image; its channel count picks grey, RGB or RGBA.</param>
    /// <param name="compression">zlib's effort.</param>
    public static void Write(string path, DecodedImage image, CompressionLevel compression = CompressionLevel.Optimal) =>
        Write(path, image.Pixels, image.Width, image.Height, image.Channels, compression);

    /// <summary>The PNG file's bytes.</summary>
    public static byte[] Encode(ReadOnlySpan<byte> pixels, int width, int height, int channels,
        CompressionLevel compression = CompressionLevel.Optimal) =>
        Encode("PNG image", pixels, width, height, channels, compression);

    /// <summary>The PNG file's bytes for <paramref name="image"/>.</summary>
    /// <param name="image">The image.</param>
    /// <param name="compression">zlib's effort.</param>
    public static byte[] Encode(DecodedImage image, CompressionLevel compression = CompressionLevel.Optimal) =>
        Encode(image.Pixels, image.Width, image.Height, image.Channels, compression);

    /// <summary>Writes the PNG file's bytes to <paramref name="output"/>, which is left open.</summary>
    public static void Encode(Stream output, ReadOnlySpan<byte> pixels, int width, int height, int channels,
        CompressionLevel compression = CompressionLevel.Optimal) =>
        EncodeTo(output, "PNG image", pixels, width, height, channels, compression);

    private static byte[] Encode(string target, ReadOnlySpan<byte> pixels, int width, int height, int channels, CompressionLevel compression)
    {
        using var buffer = new MemoryStream();
        EncodeTo(buffer, target, pixels, width, height, channels, compression);
        return buffer.ToArray();
    }

    private static void EncodeTo(Stream output, string target, ReadOnlySpan<byte> pixels, int width, int height, int channels, CompressionLevel compression)
    {
        byte colourType = channels switch
        {
            1 => 0,
            3 => 2,
            4 => 6,
            _ => throw new MediatorDiTException($"{target}: PNG images are written with 1 (grey), 3 (RGB) or 4 (RGBA) channels, not {channels}."),
        };
        if (width < 1 || height < 1)
            throw new MediatorDiTException($"{target}: a PNG image must be at least 1 x 1 pixels, not {width} x {height}.");
        long rowBytes = (long)width * channels;
        if (rowBytes + 1 > Array.MaxLength)
            throw new MediatorDiTException($"{target}: rows of {width} pixels are too wide to encode.");
        if (pixels.Length != rowBytes * height)
            throw new MediatorDiTException($"{target}: a {width} x {height} image with {channels} channels needs {rowBytes * height} bytes, but {pixels.Length} were given.");

        output.Write(PngChunk.Signature);

        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(header, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], (uint)height);
        header[8] = 8;          // bit depth
        header[9] = colourType;
        header[10] = 0;         // compression method: zlib
        header[11] = 0;         // filter method: the five adaptive filters
        header[12] = 0;         // no interlacing
        PngChunk.Write(output, "IHDR", header);

        using (var idat = new IdatChunkStream(output))
        {
            using (var zlib = new ZLibStream(idat, compression, leaveOpen: true))
                WriteFilteredRows(zlib, pixels, (int)rowBytes, height, channels);
            idat.Flush();
        }

        PngChunk.Write(output, "IEND", ReadOnlySpan<byte>.Empty);
    }

    /// <summary>Each row as its filter type byte followed by the filtered bytes, the filter chosen per row.</summary>
    private static void WriteFilteredRows(Stream zlib, ReadOnlySpan<byte> pixels, int rowBytes, int height, int bpp)
    {
        var zeroRow = new byte[rowBytes];
        // candidates[f] = filter type byte f followed by the row filtered with f.
        var candidates = new byte[5][];
        for (int f = 0; f < 5; f++)
        {
            candidates[f] = new byte[rowBytes + 1];
            candidates[f][0] = (byte)f;
        }
        for (int y = 0; y < height; y++)
        {
            ReadOnlySpan<byte> row = pixels.Slice(y * rowBytes, rowBytes);
            ReadOnlySpan<byte> prior = y == 0 ? zeroRow : pixels.Slice((y - 1) * rowBytes, rowBytes);
            int best = 0;
            long bestSum = long.MaxValue;
            for (byte f = 0; f < 5; f++)
            {
                Span<byte> filtered = candidates[f].AsSpan(1);
                PngFilters.Apply(f, row, prior, bpp, filtered);
                long sum = PngFilters.SumOfAbsoluteValues(filtered);
                if (sum < bestSum)
                {
                    bestSum = sum;
                    best = f;
                }
            }
            zlib.Write(candidates[best]);
        }
    }

    /// <summary>Collects the zlib stream and emits it as IDAT chunks of <see cref="IdatChunkSize"/> bytes.</summary>
    private sealed class IdatChunkStream(Stream output) : Stream
    {
        private readonly byte[] _buffer = new byte[IdatChunkSize];
        private int _count;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> data)
        {
            while (!data.IsEmpty)
            {
                int take = Math.Min(data.Length, _buffer.Length - _count);
                data[..take].CopyTo(_buffer.AsSpan(_count));
                _count += take;
                data = data[take..];
                if (_count == _buffer.Length) EmitChunk();
            }
        }

        /// <summary>Emits what is buffered; called once after the zlib stream has been closed.</summary>
        public override void Flush()
        {
            if (_count > 0) EmitChunk();
        }

        private void EmitChunk()
        {
            PngChunk.Write(output, "IDAT", _buffer.AsSpan(0, _count));
            _count = 0;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
