using System.Buffers.Binary;
using System.IO.Compression;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// A deliberately plain reader for 8-bit, non-interlaced PNGs (colour types 0, 2, 6), written
/// straight from the format description and sharing no code with the library; it checks what
/// PngEncoder writes. Also records the filter type of each row.
/// </summary>
public static class ReferencePngReader
{
    public sealed record Result(int Width, int Height, int ColourType, byte[] Pixels, byte[] RowFilters, List<string> ChunkTypes);

    public static Result Read(byte[] png)
    {
        byte[] signature = [137, 80, 78, 71, 13, 10, 26, 10];
        Assert.Equal(signature, png[..8]);
        int pos = 8, width = 0, height = 0, colourType = -1;
        var chunks = new List<string>();
        var compressed = new MemoryStream();
        while (true)
        {
            int length = checked((int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos)));
            string type = string.Concat(png.Skip(pos + 4).Take(4).Select(b => (char)b));
            byte[] data = png.AsSpan(pos + 8, length).ToArray();
            uint storedCrc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + length));
            Assert.Equal(PngTestBuilder.BitwiseCrc32(png.AsSpan(pos + 4, 4 + length)), storedCrc);
            chunks.Add(type);
            pos += 12 + length;
            if (type == "IHDR")
            {
                width = (int)BinaryPrimitives.ReadUInt32BigEndian(data);
                height = (int)BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(4));
                Assert.Equal(8, data[8]);
                colourType = data[9];
                Assert.Equal(new byte[] { 0, 0, 0 }, data[10..13]);
            }
            else if (type == "IDAT") compressed.Write(data);
            else if (type == "IEND") break;
        }
        Assert.Equal(png.Length, pos);

        int channels = colourType switch { 0 => 1, 2 => 3, 6 => 4, _ => throw new InvalidOperationException("unexpected colour type") };
        compressed.Position = 0;
        using var zlib = new ZLibStream(compressed, CompressionMode.Decompress);
        var raw = new MemoryStream();
        zlib.CopyTo(raw);
        byte[] rows = raw.ToArray();
        int stride = width * channels;
        Assert.Equal((stride + 1) * height, rows.Length);

        var pixels = new byte[stride * height];
        var filters = new byte[height];
        for (int y = 0; y < height; y++)
        {
            byte filter = rows[y * (stride + 1)];
            filters[y] = filter;
            for (int i = 0; i < stride; i++)
            {
                int a = i >= channels ? pixels[y * stride + i - channels] : 0;
                int b = y > 0 ? pixels[(y - 1) * stride + i] : 0;
                int c = i >= channels && y > 0 ? pixels[(y - 1) * stride + i - channels] : 0;
                int predicted = filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => PaethPredictor(a, b, c),
                    _ => throw new InvalidOperationException($"filter type {filter}"),
                };
                pixels[y * stride + i] = (byte)(rows[y * (stride + 1) + 1 + i] + predicted);
            }
        }
        return new Result(width, height, colourType, pixels, filters, chunks);
    }

    private static int PaethPredictor(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
