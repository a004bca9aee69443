using System.Buffers.Binary;
using System.IO.Compression;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// Assembles PNG files chunk by chunk for tests that need exact control (bad filter bytes, odd
/// chunks, broken palettes). Its CRC is a plain bitwise CRC-32, independent of the library's.
/// </summary>
public sealed class PngTestBuilder
{
    private readonly MemoryStream _bytes = new();

    public PngTestBuilder(bool signature = true)
    {
        if (signature) _bytes.Write([137, 80, 78, 71, 13, 10, 26, 10]);
    }

    public PngTestBuilder Chunk(string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(word, (uint)data.Length);
        _bytes.Write(word);
        byte[] typeBytes = type.Select(ch => (byte)ch).ToArray();
        _bytes.Write(typeBytes);
        _bytes.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, BitwiseCrc32([.. typeBytes, .. data.ToArray()]));
        _bytes.Write(word);
        return this;
    }

    public PngTestBuilder Header(int width, int height, int bitDepth, int colourType, int interlace = 0, int compression = 0, int filter = 0)
    {
        var data = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(4), (uint)height);
        data[8] = (byte)bitDepth;
        data[9] = (byte)colourType;
        data[10] = (byte)compression;
        data[11] = (byte)filter;
        data[12] = (byte)interlace;
        return Chunk("IHDR", data);
    }

    /// <summary>One IDAT holding the zlib-compressed bytes (filter type bytes included by the caller).</summary>
    public PngTestBuilder ImageData(ReadOnlySpan<byte> rawRows) => Chunk("IDAT", Compress(rawRows));

    public PngTestBuilder End() => Chunk("IEND", ReadOnlySpan<byte>.Empty);

    public byte[] ToArray() => _bytes.ToArray();

    public static byte[] Compress(ReadOnlySpan<byte> raw)
    {
        using var buffer = new MemoryStream();
        using (var zlib = new ZLibStream(buffer, CompressionLevel.Optimal, leaveOpen: true))
            zlib.Write(raw);
        return buffer.ToArray();
    }

    public static uint BitwiseCrc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
