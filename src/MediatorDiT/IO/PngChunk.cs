using System.Buffers.Binary;

namespace MediatorDiT.IO;

/// <summary>
/// PNG framing shared by <see cref="PngEncoder"/> and <see cref="PngDecoder"/>: the 8-byte signature
/// and chunks, each stored as length (4 bytes, big-endian), type (4 ASCII letters), data and the
/// CRC-32 of type plus data.
/// </summary>
internal static class PngChunk
{
    public static ReadOnlySpan<byte> Signature => [137, 80, 78, 71, 13, 10, 26, 10];

    /// <summary>Chunk lengths are limited to 2^31 - 1 by the format.</summary>
    public const uint MaxLength = int.MaxValue;

    public static void Write(Stream output, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(prefix, (uint)data.Length);
        for (int i = 0; i < 4; i++) prefix[4 + i] = (byte)type[i];
        uint crc = Crc32.Append(Crc32.Compute(prefix[4..]), data);
        Span<byte> suffix = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(suffix, crc);
        output.Write(prefix);
        output.Write(data);
        output.Write(suffix);
    }

    /// <summary>Critical chunks (upper-case first letter) must be understood; ancillary ones may be skipped.</summary>
    public static bool IsCritical(ReadOnlySpan<byte> type) => (type[0] & 0x20) == 0;

    public static bool IsValidType(ReadOnlySpan<byte> type)
    {
        foreach (byte b in type)
            if (!(b is >= (byte)'A' and <= (byte)'Z' or >= (byte)'a' and <= (byte)'z')) return false;
        return true;
    }

    /// <summary>The type as text for messages; non-letters are shown as hex escapes.</summary>
    public static string Name(ReadOnlySpan<byte> type)
    {
        var text = new System.Text.StringBuilder(4);
        foreach (byte b in type)
            text.Append(b is >= 0x20 and < 0x7F and not (byte)'\'' ? ((char)b).ToString() : $"\\x{b:X2}");
        return text.ToString();
    }
}
