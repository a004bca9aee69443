using System.Buffers.Binary;

namespace MediatorDiT.IO;

/// <summary>
/// The IHDR chunk: size, bit depth and colour type (0 grey, 2 RGB, 3 palette, 4 grey + alpha,
/// 6 RGBA), and whether rows are Adam7-interlaced.
/// </summary>
internal readonly record struct PngHeader(int Width, int Height, int BitDepth, int ColourType, bool Interlaced)
{
    public const int Length = 13;

    /// <summary>Samples per pixel as stored (a palette index is one sample).</summary>
    public int SamplesPerPixel => ColourType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };

    public int BitsPerPixel => SamplesPerPixel * BitDepth;

    /// <summary>The filter's byte distance: bytes per complete pixel, at least 1.</summary>
    public int FilterStride => Math.Max(1, BitsPerPixel / 8);

    /// <summary>Bytes of one stored row of <paramref name="pixels"/> pixels, excluding the filter type byte.</summary>
    public long RowBytes(int pixels) => ((long)pixels * BitsPerPixel + 7) / 8;

    public static PngHeader Parse(ReadOnlySpan<byte> data, string source)
    {
        if (data.Length != Length)
            throw new MediatorDiTException($"{source}: the IHDR chunk has {data.Length} bytes instead of {Length} (the file is corrupt).");
        uint width = BinaryPrimitives.ReadUInt32BigEndian(data);
        uint height = BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
        int bitDepth = data[8], colourType = data[9];
        if (width is 0 or > int.MaxValue || height is 0 or > int.MaxValue)
            throw new MediatorDiTException($"{source}: the PNG header gives an invalid size of {width} x {height} pixels (the file is corrupt).");
        bool depthAllowed = colourType switch
        {
            0 => bitDepth is 1 or 2 or 4 or 8 or 16,
            3 => bitDepth is 1 or 2 or 4 or 8,
            2 or 4 or 6 => bitDepth is 8 or 16,
            _ => throw new MediatorDiTException($"{source}: the PNG header gives colour type {colourType}, which does not exist (0, 2, 3, 4 or 6 are valid)."),
        };
        if (!depthAllowed)
            throw new MediatorDiTException($"{source}: the PNG header combines colour type {colourType} with bit depth {bitDepth}, which the format does not allow.");
        if (data[10] != 0)
            throw new MediatorDiTException($"{source}: the PNG header gives compression method {data[10]}; only 0 (zlib) exists.");
        if (data[11] != 0)
            throw new MediatorDiTException($"{source}: the PNG header gives filter method {data[11]}; only 0 exists.");
        if (data[12] > 1)
            throw new MediatorDiTException($"{source}: the PNG header gives interlace method {data[12]}; only 0 (none) and 1 (Adam7) exist.");
        return new PngHeader((int)width, (int)height, bitDepth, colourType, data[12] == 1);
    }
}
