using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Data;

/// <summary>
/// A grey picture of one or more blocks of images side by side, each block with a title above it and
/// one row per label, the row's label written at the left with <see cref="BitmapFont"/>. Images (S x S)
/// are upscaled <c>scale</c> times (nearest neighbour) into cells of side c = S * scale. Layout, in pixels:
/// <list type="bullet">
/// <item>label strip: width L = the widest label at <see cref="TextScale"/> + 2 <see cref="Margin"/>;</item>
/// <item>title strip: height T = <see cref="BitmapFont.LineHeight"/>(TextScale) + 2 Margin;</item>
/// <item>each block: columns (c + <see cref="Padding"/>) + Padding wide, rows (c + Padding) + Padding high
/// (make_grid's layout), blocks <see cref="BlockGap"/> apart;</item>
/// <item>the picture: L + blocks * block width + (blocks - 1) * BlockGap wide, T + block height high.</item>
/// </list>
/// Image (row r, column k) of a block is its image r * columns + k; background 0, text 255.
/// </summary>
internal static class LabelledGrid
{
    public const int Padding = 2;
    public const int Margin = 6;
    public const int TextScale = 2;
    public const int BlockGap = 12;

    /// <summary>Picture size and strip sizes for <paramref name="blocks"/> blocks of rows x columns images of side S.</summary>
    public static (int Width, int Height, int LabelWidth, int TitleHeight) Layout(IReadOnlyList<string> rowLabels, int blocks, int columns, int imageSide, int scale)
    {
        int cell = imageSide * scale;
        int labelWidth = rowLabels.Max(l => BitmapFont.MeasureWidth(l, TextScale)) + 2 * Margin;
        int titleHeight = BitmapFont.LineHeight(TextScale) + 2 * Margin;
        int blockWidth = columns * (cell + Padding) + Padding;
        int blockHeight = rowLabels.Count * (cell + Padding) + Padding;
        return (labelWidth + blocks * blockWidth + (blocks - 1) * BlockGap, titleHeight + blockHeight, labelWidth, titleHeight);
    }

    /// <summary>
    /// Renders the blocks (each (rows * columns, 1 or 3, S, S) in [-1, 1], RGB reduced to luma) with their
    /// <paramref name="titles"/> and the <paramref name="rowLabels"/>.
    /// </summary>
    public static DecodedImage Render(IReadOnlyList<Tensor> blocks, IReadOnlyList<string> titles, IReadOnlyList<string> rowLabels, int columns, int scale)
    {
        if (blocks.Count == 0 || titles.Count != blocks.Count)
            throw new MediatorDiTException($"a labelled grid needs at least one block and one title per block, got {blocks.Count} blocks and {titles.Count} titles.");
        if (rowLabels.Count == 0 || columns < 1 || scale < 1)
            throw new MediatorDiTException($"a labelled grid needs at least one row, one column and scale >= 1, got {rowLabels.Count}, {columns}, {scale}.");
        int side = blocks[0].Dim(2);
        foreach (var b in blocks)
            if (b.Rank != 4 || b.Dim(0) != rowLabels.Count * columns || b.Dim(1) is not (1 or 3) || b.Dim(2) != side || b.Dim(3) != side)
                throw new MediatorDiTException($"each block must hold {rowLabels.Count} x {columns} images (N, 1 or 3, {side}, {side}), got [{b.ShapeString}].");
        var (width, height, labelWidth, titleHeight) = Layout(rowLabels, blocks.Count, columns, side, scale);
        var picture = new DecodedImage(width, height, 1, new byte[width * height]);
        int cell = side * scale;
        int blockWidth = columns * (cell + Padding) + Padding;
        int textHeight = BitmapFont.LineHeight(TextScale);
        for (int r = 0; r < rowLabels.Count; r++)
            BitmapFont.Draw(picture, rowLabels[r], Margin, titleHeight + Padding + r * (cell + Padding) + (cell - textHeight) / 2, TextScale);
        for (int bi = 0; bi < blocks.Count; bi++)
        {
            int left = labelWidth + bi * (blockWidth + BlockGap);
            BitmapFont.Draw(picture, titles[bi], left + Padding, Margin, TextScale);
            var grey = Grey(blocks[bi]);
            for (int i = 0; i < grey.Count; i++)
            {
                int x0 = left + Padding + (i % columns) * (cell + Padding);
                int y0 = titleHeight + Padding + (i / columns) * (cell + Padding);
                var image = grey[i];
                for (int y = 0; y < cell; y++)
                for (int x = 0; x < cell; x++)
                    picture.Pixels[(y0 + y) * width + x0 + x] = image.Pixels[(y / scale) * side + x / scale];
            }
        }
        return picture;
    }

    private static List<DecodedImage> Grey(Tensor images)
    {
        var result = new List<DecodedImage>(images.Dim(0));
        for (int i = 0; i < images.Dim(0); i++)
        {
            var image = ImageConversion.ToImage(images, i);
            result.Add(image.Channels == 1 ? image : image.ToGrey());
        }
        return result;
    }
}
