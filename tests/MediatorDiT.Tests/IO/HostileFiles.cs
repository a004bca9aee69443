using System.IO.Compression;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// Small files that declare or unpack into huge ones (decompression bombs), built byte by byte so
/// the tests need neither the disk nor the memory of what they claim.
/// </summary>
public static class HostileFiles
{
    /// <summary>
    /// A valid 8-bit grey PNG header of <paramref name="width"/> x <paramref name="height"/> followed by
    /// only the first <paramref name="rows"/> rows of image data (zeros), as the start of a real bomb.
    /// </summary>
    public static byte[] OversizedGreyPng(int width, int height, int rows = 4)
    {
        var raw = new byte[(long)rows * (width + 1)];
        return new PngTestBuilder().Header(width, height, 8, 0).ImageData(raw).End().ToArray();
    }

    /// <summary>
    /// Raw deflate data of <paramref name="prefix"/> followed by <paramref name="mebibytes"/> MiB of zeros:
    /// one compressed MiB of zeros (about 1 KB) repeated, which stays valid wherever it is placed because
    /// every back-reference in it points at zeros.
    /// </summary>
    public static byte[] DeflatedZeros(byte[] prefix, int mebibytes)
    {
        var output = new MemoryStream();
        output.Write(SyncFlushed(prefix));
        byte[] block = SyncFlushed(new byte[1 << 20]);
        for (int i = 0; i < mebibytes; i++) output.Write(block);
        output.Write([0x03, 0x00]); // an empty final block (fixed Huffman, end-of-block only)
        return output.ToArray();
    }

    private static byte[] SyncFlushed(byte[] data)
    {
        var buffer = new MemoryStream();
        var deflate = new DeflateStream(buffer, CompressionLevel.Optimal, leaveOpen: true);
        deflate.Write(data);
        deflate.Flush(); // a sync flush: the blocks end byte-aligned and none is final
        return buffer.ToArray(); // taken before the stream is finished, which would append a final block
    }

    /// <summary>The CRC-32 of <paramref name="prefix"/> followed by <paramref name="zeros"/> zero bytes, without touching them.</summary>
    public static uint Crc32WithZeros(byte[] prefix, long zeros)
    {
        // A zero byte multiplies the CRC register by x^8 modulo the polynomial, so n of them multiply it by x^(8n).
        uint register = ~Crc32.Compute(prefix);
        return ~MultiplyModP(PowerOfX(8 * zeros), register);
    }

    private const uint Polynomial = 0xEDB88320; // reflected

    private static uint MultiplyModP(uint a, uint b)
    {
        uint product = 0;
        for (uint m = 1u << 31; m != 0; m >>= 1)
        {
            if ((a & m) != 0) product ^= b;
            b = (b & 1) != 0 ? (b >> 1) ^ Polynomial : b >> 1;
        }
        return product;
    }

    /// <summary>x^n modulo the polynomial, by squaring.</summary>
    private static uint PowerOfX(long n)
    {
        uint result = 1u << 31, square = 1u << 30; // x^0 and x^1, reflected
        for (; n > 0; n >>= 1)
        {
            if ((n & 1) != 0) result = MultiplyModP(square, result);
            square = MultiplyModP(square, square);
        }
        return result;
    }

    /// <summary>
    /// A zip with one entry whose directory gives <paramref name="crc"/> and <paramref name="uncompressedSize"/> as
    /// stated, whatever the data really holds (method 8 deflate, 0 stored).
    /// </summary>
    public static byte[] SingleEntryZip(string name, byte[] data, uint crc, uint uncompressedSize, bool deflated = true)
    {
        byte[] nameBytes = System.Text.Encoding.UTF8.GetBytes(name);
        ushort method = deflated ? (ushort)8 : (ushort)0;
        var zip = new MemoryStream();
        var w = new BinaryWriter(zip);
        w.Write(0x04034b50u); w.Write((ushort)20); w.Write((ushort)0); w.Write(method); w.Write((ushort)0); w.Write((ushort)0x21);
        w.Write(crc); w.Write((uint)data.Length); w.Write(uncompressedSize); w.Write((ushort)nameBytes.Length); w.Write((ushort)0);
        w.Write(nameBytes); w.Write(data);
        long directory = zip.Position;
        w.Write(0x02014b50u); w.Write((ushort)20); w.Write((ushort)20); w.Write((ushort)0); w.Write(method); w.Write((ushort)0); w.Write((ushort)0x21);
        w.Write(crc); w.Write((uint)data.Length); w.Write(uncompressedSize); w.Write((ushort)nameBytes.Length); w.Write((ushort)0); w.Write((ushort)0);
        w.Write((ushort)0); w.Write((ushort)0); w.Write(0u); w.Write(0u); w.Write(nameBytes);
        long end = zip.Position;
        w.Write(0x06054b50u); w.Write((ushort)0); w.Write((ushort)0); w.Write((ushort)1); w.Write((ushort)1);
        w.Write((uint)(end - directory)); w.Write((uint)directory); w.Write((ushort)0);
        w.Flush();
        return zip.ToArray();
    }

    /// <summary>
    /// An .npz whose arr_0 is uint8 (<paramref name="count"/>, 32, 32) of zeros, <paramref name="count"/> a multiple
    /// of 1024, stored as a real deflate bomb of about 1 KB per 1024 images with consistent sizes and CRC.
    /// </summary>
    public static byte[] ZeroImageBombNpz(int count)
    {
        if (count % 1024 != 0) throw new ArgumentException("count must be a multiple of 1024.");
        byte[] header = NpyFormat.Header(DType.U8, [count, 32, 32]);
        long zeros = (long)count * 32 * 32;
        return SingleEntryZip("arr_0.npy", DeflatedZeros(header, count / 1024), Crc32WithZeros(header, zeros), checked((uint)(header.Length + zeros)));
    }
}
