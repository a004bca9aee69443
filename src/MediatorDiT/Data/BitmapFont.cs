using MediatorDiT.IO;

namespace MediatorDiT.Data;

/// <summary>
/// A tiny hand-drawn 5 x 8 bitmap font (cap height 7, one row below the baseline for g, j, p, q, y) for
/// labelling image grids without a font library: printable ASCII letters, digits and a little
/// punctuation. Text is drawn onto a grey <see cref="DecodedImage"/>, each font pixel as a
/// scale x scale square, glyphs <see cref="Advance"/> font pixels apart.
/// </summary>
internal static class BitmapFont
{
    public const int GlyphWidth = 5;
    public const int GlyphHeight = 8;

    /// <summary>Horizontal distance between glyph origins, in font pixels (one blank column between glyphs).</summary>
    public const int Advance = GlyphWidth + 1;

    // Rows top to bottom, '#' = ink. Seven rows sit on the baseline; an eighth is the descender.
    private static readonly Dictionary<char, string> Shapes = new()
    {
        [' '] = ".....|.....|.....|.....|.....|.....|.....",
        ['A'] = ".###.|#...#|#...#|#####|#...#|#...#|#...#",
        ['B'] = "####.|#...#|#...#|####.|#...#|#...#|####.",
        ['C'] = ".###.|#...#|#....|#....|#....|#...#|.###.",
        ['D'] = "###..|#..#.|#...#|#...#|#...#|#..#.|###..",
        ['E'] = "#####|#....|#....|####.|#....|#....|#####",
        ['F'] = "#####|#....|#....|####.|#....|#....|#....",
        ['G'] = ".###.|#...#|#....|#.###|#...#|#...#|.####",
        ['H'] = "#...#|#...#|#...#|#####|#...#|#...#|#...#",
        ['I'] = ".###.|..#..|..#..|..#..|..#..|..#..|.###.",
        ['J'] = "..###|...#.|...#.|...#.|...#.|#..#.|.##..",
        ['K'] = "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",
        ['L'] = "#....|#....|#....|#....|#....|#....|#####",
        ['M'] = "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",
        ['N'] = "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",
        ['O'] = ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
        ['P'] = "####.|#...#|#...#|####.|#....|#....|#....",
        ['Q'] = ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",
        ['R'] = "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
        ['S'] = ".####|#....|#....|.###.|....#|....#|####.",
        ['T'] = "#####|..#..|..#..|..#..|..#..|..#..|..#..",
        ['U'] = "#...#|#...#|#...#|#...#|#...#|#...#|.###.",
        ['V'] = "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
        ['W'] = "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",
        ['X'] = "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",
        ['Y'] = "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",
        ['Z'] = "#####|....#|...#.|..#..|.#...|#....|#####",
        ['a'] = ".....|.....|.###.|....#|.####|#...#|.####",
        ['b'] = "#....|#....|####.|#...#|#...#|#...#|####.",
        ['c'] = ".....|.....|.###.|#....|#....|#...#|.###.",
        ['d'] = "....#|....#|.####|#...#|#...#|#...#|.####",
        ['e'] = ".....|.....|.###.|#...#|#####|#....|.###.",
        ['f'] = "..##.|.#..#|.#...|###..|.#...|.#...|.#...",
        ['g'] = ".....|.....|.####|#...#|#...#|.####|....#|.###.",
        ['h'] = "#....|#....|#.##.|##..#|#...#|#...#|#...#",
        ['i'] = "..#..|.....|.##..|..#..|..#..|..#..|.###.",
        ['j'] = "...#.|.....|..##.|...#.|...#.|...#.|#..#.|.##..",
        ['k'] = "#....|#....|#..#.|#.#..|##...|#.#..|#..#.",
        ['l'] = ".##..|..#..|..#..|..#..|..#..|..#..|.###.",
        ['m'] = ".....|.....|##.#.|#.#.#|#.#.#|#...#|#...#",
        ['n'] = ".....|.....|#.##.|##..#|#...#|#...#|#...#",
        ['o'] = ".....|.....|.###.|#...#|#...#|#...#|.###.",
        ['p'] = ".....|.....|####.|#...#|#...#|####.|#....|#....",
        ['q'] = ".....|.....|.####|#...#|#...#|.####|....#|....#",
        ['r'] = ".....|.....|#.##.|##..#|#....|#....|#....",
        ['s'] = ".....|.....|.####|#....|.###.|....#|####.",
        ['t'] = ".#...|.#...|###..|.#...|.#...|.#..#|..##.",
        ['u'] = ".....|.....|#...#|#...#|#...#|#..##|.##.#",
        ['v'] = ".....|.....|#...#|#...#|#...#|.#.#.|..#..",
        ['w'] = ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#.",
        ['x'] = ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#",
        ['y'] = ".....|.....|#...#|#...#|#...#|.####|....#|.###.",
        ['z'] = ".....|.....|#####|...#.|..#..|.#...|#####",
        ['0'] = ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",
        ['1'] = "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
        ['2'] = ".###.|#...#|....#|...#.|..#..|.#...|#####",
        ['3'] = "#####|...#.|..#..|...#.|....#|#...#|.###.",
        ['4'] = "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
        ['5'] = "#####|#....|####.|....#|....#|#...#|.###.",
        ['6'] = "..##.|.#...|#....|####.|#...#|#...#|.###.",
        ['7'] = "#####|....#|...#.|..#..|.#...|.#...|.#...",
        ['8'] = ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
        ['9'] = ".###.|#...#|#...#|.####|....#|...#.|.##..",
        ['-'] = ".....|.....|.....|#####|.....|.....|.....",
        ['/'] = ".....|....#|...#.|..#..|.#...|#....|.....",
        ['.'] = ".....|.....|.....|.....|.....|.##..|.##..",
        [','] = ".....|.....|.....|.....|.##..|..#..|.#...",
        [':'] = ".....|.##..|.##..|.....|.##..|.##..|.....",
        ['%'] = "##...|##..#|...#.|..#..|.#...|#..##|...##",
        ['('] = "...#.|..#..|.#...|.#...|.#...|..#..|...#.",
        [')'] = ".#...|..#..|...#.|...#.|...#.|..#..|.#...",
        ['+'] = ".....|..#..|..#..|#####|..#..|..#..|.....",
        ['='] = ".....|.....|#####|.....|#####|.....|.....",
    };

    private static readonly Dictionary<char, bool[,]> Glyphs = Shapes.ToDictionary(kv => kv.Key, kv => Parse(kv.Key, kv.Value));

    /// <summary>The characters the font can draw.</summary>
    public static IReadOnlyCollection<char> Characters => Glyphs.Keys;

    public static bool CanDraw(char c) => Glyphs.ContainsKey(c);

    /// <summary>Ink of glyph <paramref name="c"/> as [row, column] (GlyphHeight x GlyphWidth).</summary>
    public static bool[,] Glyph(char c) => Glyphs.TryGetValue(c, out var g) ? (bool[,])g.Clone()
        : throw new MediatorDiTException($"the bitmap font has no glyph for '{c}' (U+{(int)c:X4}).");

    /// <summary>Width in pixels of <paramref name="text"/> drawn at <paramref name="scale"/> (no trailing gap).</summary>
    public static int MeasureWidth(string text, int scale) => text.Length == 0 ? 0 : (text.Length * Advance - 1) * scale;

    /// <summary>Height in pixels of a line of text at <paramref name="scale"/>, descenders included.</summary>
    public static int LineHeight(int scale) => GlyphHeight * scale;

    /// <summary>
    /// Draws <paramref name="text"/> into a one-channel image with its top-left corner at (x, y); pixels
    /// outside the image are clipped. Throws for characters the font lacks.
    /// </summary>
    public static void Draw(DecodedImage image, string text, int x, int y, int scale = 1, byte ink = 255)
    {
        if (image.Channels != 1) throw new MediatorDiTException($"the bitmap font draws on one-channel images, not {image.Channels}-channel ones.");
        if (scale < 1) throw new MediatorDiTException($"the font scale must be at least 1, got {scale}.");
        for (int k = 0; k < text.Length; k++)
        {
            if (!Glyphs.TryGetValue(text[k], out var glyph))
                throw new MediatorDiTException($"the bitmap font has no glyph for '{text[k]}' (U+{(int)text[k]:X4}) in \"{text}\".");
            int left = x + k * Advance * scale;
            for (int row = 0; row < GlyphHeight; row++)
            for (int col = 0; col < GlyphWidth; col++)
            {
                if (!glyph[row, col]) continue;
                for (int dy = 0; dy < scale; dy++)
                for (int dx = 0; dx < scale; dx++)
                {
                    int px = left + col * scale + dx, py = y + row * scale + dy;
                    if ((uint)px < (uint)image.Width && (uint)py < (uint)image.Height) image.Pixels[py * image.Width + px] = ink;
                }
            }
        }
    }

    private static bool[,] Parse(char c, string shape)
    {
        string[] rows = shape.Split('|');
        if (rows.Length is < 7 or > GlyphHeight || rows.Any(r => r.Length != GlyphWidth))
            throw new InvalidOperationException($"glyph '{c}' must have 7 or 8 rows of {GlyphWidth} columns.");
        var glyph = new bool[GlyphHeight, GlyphWidth];
        for (int r = 0; r < rows.Length; r++)
        for (int col = 0; col < GlyphWidth; col++) glyph[r, col] = rows[r][col] == '#';
        return glyph;
    }
}
