namespace MediatorDiT.Tests.IO;

/// <summary>
/// The PNG files in tests/MediatorDiT.Tests/Data/png (written by libpng and by a separate Python
/// writer, see the README there) and the pixels they hold, recomputed from the same pattern.
/// </summary>
public static class PngTestVectors
{
    public sealed record Vector(string Name, int Width, int Height, int ColourType, int BitDepth, bool Transparency, bool Interlaced)
    {
        public override string ToString() => Name;
    }

    public static readonly Vector[] All =
    [
        new("g1.png", 10, 9, 0, 1, false, false),
        new("g2.png", 10, 9, 0, 2, false, false),
        new("g4.png", 10, 9, 0, 4, false, false),
        new("g8.png", 10, 9, 0, 8, false, false),
        new("g16.png", 10, 9, 0, 16, false, false),
        new("g8t.png", 10, 9, 0, 8, true, false),
        new("rgb8.png", 10, 9, 2, 8, false, false),
        new("rgb16.png", 10, 9, 2, 16, false, false),
        new("rgb16t.png", 10, 9, 2, 16, true, false),
        new("p1.png", 10, 9, 3, 1, false, false),
        new("p2t.png", 10, 9, 3, 2, true, false),
        new("p4.png", 10, 9, 3, 4, false, false),
        new("p8t.png", 10, 9, 3, 8, true, false),
        new("ga8.png", 10, 9, 4, 8, false, false),
        new("ga16.png", 10, 9, 4, 16, false, false),
        new("rgba8.png", 10, 9, 6, 8, false, false),
        new("rgba16.png", 10, 9, 6, 16, false, false),
        new("g1i.png", 10, 9, 0, 1, false, true),
        new("g16i.png", 10, 9, 0, 16, false, true),
        new("rgb8ti.png", 10, 9, 2, 8, true, true),
        new("p4ti.png", 10, 9, 3, 4, true, true),
        new("ga8i.png", 10, 9, 4, 8, false, true),
        new("rgba16i.png", 10, 9, 6, 16, false, true),
        // Hand-built: every filter type forced in turn, many small IDAT chunks, ancillary chunks.
        new("f_rgb8.png", 10, 9, 2, 8, false, false),
        new("f_g16i.png", 10, 9, 0, 16, false, true),
        new("f_rgba8i.png", 10, 9, 6, 8, false, true),
        new("f_p2i.png", 10, 9, 3, 2, false, true),
        new("f_g4i_3x2.png", 3, 2, 0, 4, false, true),
        new("f_rgb8i_1x1.png", 1, 1, 2, 8, false, true),
    ];

    public static IEnumerable<object[]> Names => All.Select(v => new object[] { v.Name });

    public static Vector Get(string name) => All.Single(v => v.Name == name);

    public static string Dir => Path.Combine(Fixtures.RepoRoot, "tests", "MediatorDiT.Tests", "Data", "png");

    public static string PathOf(string name)
    {
        string path = Path.Combine(Dir, name);
        if (!File.Exists(path)) throw new FileNotFoundException($"PNG test vector {path} is missing.");
        return path;
    }

    /// <summary>The stored sample of channel c at (x, y), at the vector's bit depth.</summary>
    public static int Sample(int x, int y, int c, int depth)
    {
        uint v = unchecked((uint)x * 0x9E37u + (uint)y * 0x85EBu + (uint)c * 0xC2B2u + (uint)(x * y) * 0x27D4u) >> 3;
        return (int)(v & ((1u << depth) - 1u));
    }

    public static int PaletteCount(int depth) => depth switch { 1 => 2, 2 => 3, 4 => 11, _ => 200 };

    public static (byte R, byte G, byte B) PaletteEntry(int i) => ((byte)(i * 37 + 11), (byte)(i * 91 + 3), (byte)(i * 53 + 200));

    /// <summary>tRNS of the palette vectors covers the first half of the palette.</summary>
    public static byte PaletteAlpha(int i, int depth) => i < Math.Max(1, PaletteCount(depth) / 2) ? (byte)(i * 71 + 5) : (byte)255;

    /// <summary>A sample at 8 bits: 16-bit values to the nearest of 256 levels, lower depths stretched to 0..255.</summary>
    public static byte To8Bit(int value, int depth) => depth == 16
        ? (byte)Math.Round(value / 257.0)
        : (byte)(value * 255 / ((1 << depth) - 1));

    /// <summary>Channels the decoder should give: 1 grey, 3 RGB, 4 whenever there is alpha.</summary>
    public static int ExpectedChannels(Vector v) => v.ColourType switch
    {
        0 => v.Transparency ? 4 : 1,
        2 or 3 => v.Transparency ? 4 : 3,
        _ => 4,
    };

    /// <summary>The vector's pixels as RGBA, 8 bits, HWC.</summary>
    public static byte[] ExpectedRgba(Vector v)
    {
        var rgba = new byte[v.Width * v.Height * 4];
        int d = v.BitDepth;
        for (int y = 0; y < v.Height; y++)
            for (int x = 0; x < v.Width; x++)
            {
                int o = (y * v.Width + x) * 4;
                switch (v.ColourType)
                {
                    case 0:
                    {
                        int s = Sample(x, y, 0, d);
                        rgba[o] = rgba[o + 1] = rgba[o + 2] = To8Bit(s, d);
                        rgba[o + 3] = v.Transparency && s == Sample(0, 0, 0, d) ? (byte)0 : (byte)255;
                        break;
                    }
                    case 2:
                    {
                        bool key = true;
                        for (int c = 0; c < 3; c++)
                        {
                            int s = Sample(x, y, c, d);
                            rgba[o + c] = To8Bit(s, d);
                            key &= s == Sample(0, 0, c, d);
                        }
                        rgba[o + 3] = v.Transparency && key ? (byte)0 : (byte)255;
                        break;
                    }
                    case 3:
                    {
                        int index = Sample(x, y, 0, d) % PaletteCount(d);
                        (rgba[o], rgba[o + 1], rgba[o + 2]) = PaletteEntry(index);
                        rgba[o + 3] = v.Transparency ? PaletteAlpha(index, d) : (byte)255;
                        break;
                    }
                    case 4:
                        rgba[o] = rgba[o + 1] = rgba[o + 2] = To8Bit(Sample(x, y, 0, d), d);
                        rgba[o + 3] = To8Bit(Sample(x, y, 1, d), d);
                        break;
                    default:
                        for (int c = 0; c < 4; c++) rgba[o + c] = To8Bit(Sample(x, y, c, d), d);
                        break;
                }
            }
        return rgba;
    }
}
