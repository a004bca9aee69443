using MediatorDiT.Data;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.Data;

/// <summary>The hand-drawn label font: coverage of the class names, distinct non-empty glyphs, exact placement.</summary>
public class BitmapFontTests
{
    private static string Key(bool[,] g) =>
        string.Concat(Enumerable.Range(0, BitmapFont.GlyphHeight).SelectMany(r => Enumerable.Range(0, BitmapFont.GlyphWidth).Select(c => g[r, c] ? '#' : '.')));

    [Fact]
    public void EveryCharacterOfTheClassNamesAndDemoTitlesIsDrawable()
    {
        var needed = DatasetClassNames.FashionMnist.Concat(DatasetClassNames.Mnist).Concat(["dynamic m4-m16-m64", "m64 alone", "full", "class 9"])
            .SelectMany(n => n).Distinct().ToArray();
        Assert.Contains('/', needed);
        foreach (char c in needed) Assert.True(BitmapFont.CanDraw(c), $"no glyph for '{c}'");
        foreach (char c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") Assert.True(BitmapFont.CanDraw(c), $"no glyph for '{c}'");
    }

    [Fact]
    public void EveryGlyphButTheSpaceHasInkAndAllAreDistinct()
    {
        var keys = new Dictionary<string, char>();
        foreach (char c in BitmapFont.Characters)
        {
            var g = BitmapFont.Glyph(c);
            int ink = 0;
            foreach (bool b in g) ink += b ? 1 : 0;
            if (c == ' ') { Assert.Equal(0, ink); continue; }
            Assert.True(ink > 0, $"glyph '{c}' is empty");
            string key = Key(g);
            Assert.False(keys.TryGetValue(key, out char other), $"glyphs '{c}' and '{other}' are identical");
            keys[key] = c;
        }
    }

    [Fact]
    public void DrawPutsEachGlyphPixelAsAScaledSquareAtItsAdvance()
    {
        const int scale = 2, x0 = 3, y0 = 1;
        string text = "Bag";
        int width = x0 + BitmapFont.MeasureWidth(text, scale) + 2, height = y0 + BitmapFont.LineHeight(scale) + 1;
        Assert.Equal((3 * 6 - 1) * 2, BitmapFont.MeasureWidth(text, scale));
        var image = new DecodedImage(width, height, 1, new byte[width * height]);
        BitmapFont.Draw(image, text, x0, y0, scale, ink: 200);
        var expected = new byte[width * height];
        for (int k = 0; k < text.Length; k++)
        {
            var g = BitmapFont.Glyph(text[k]);
            for (int r = 0; r < BitmapFont.GlyphHeight; r++)
            for (int c = 0; c < BitmapFont.GlyphWidth; c++)
                if (g[r, c])
                    for (int d = 0; d < scale * scale; d++)
                        expected[(y0 + r * scale + d / scale) * width + x0 + (k * 6 + c) * scale + d % scale] = 200;
        }
        Assert.Equal(expected, image.Pixels);
        Assert.True(BitmapFont.Glyph('g')[7, 1] || BitmapFont.Glyph('g')[7, 2], "g descends below the baseline");
    }

    [Fact]
    public void UnknownCharactersAndRgbImagesAreClearErrors()
    {
        var image = new DecodedImage(10, 10, 1, new byte[100]);
        var e = Assert.Throws<MediatorDiTException>(() => BitmapFont.Draw(image, "a~", 0, 0));
        Assert.Contains("'~'", e.Message);
        e = Assert.Throws<MediatorDiTException>(() => BitmapFont.Draw(new DecodedImage(4, 4, 3, new byte[48]), "a", 0, 0));
        Assert.Contains("one-channel", e.Message);
    }
}
