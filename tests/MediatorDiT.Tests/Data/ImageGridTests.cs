using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.IO;

namespace MediatorDiT.Tests.Data;

public sealed class ImageGridTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>count grey images of W x H; pixel p of image k holds 10 k + p + 1 (never 0, the pad value).</summary>
    private static byte[] NumberedImages(int count, int width, int height)
    {
        var bytes = new byte[count * width * height];
        for (int k = 0; k < count; k++)
            for (int p = 0; p < width * height; p++)
                bytes[k * width * height + p] = (byte)(10 * k + p + 1);
        return bytes;
    }

    [Fact]
    public void LaysOutCellsLikeMakeGrid()
    {
        // 5 images of 3 x 2, 2 per row: 2 columns, 3 rows; 2 (3 + 2) + 2 = 12 wide, 3 (2 + 2) + 2 = 14 high.
        DecodedImage grid = ImageGrid.Arrange(NumberedImages(5, 3, 2), count: 5, width: 3, height: 2, channels: 1, nrow: 2);

        Assert.Equal((12, 14, 1), (grid.Width, grid.Height, grid.Channels));
        var expected = new byte[14, 12];
        for (int k = 0; k < 5; k++)
        {
            int left = (k % 2) * 5 + 2, top = (k / 2) * 4 + 2;
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 3; x++)
                    expected[top + y, left + x] = (byte)(10 * k + y * 3 + x + 1);
        }
        for (int y = 0; y < 14; y++)
            for (int x = 0; x < 12; x++)
                Assert.True(expected[y, x] == grid.At(x, y, 0), $"pixel ({x}, {y}) is {grid.At(x, y, 0)}, expected {expected[y, x]}.");
        // The sixth cell (row 2, column 1) is empty: pad value throughout.
        Assert.Equal(0, grid.At(7, 10, 0));
    }

    [Fact]
    public void FewerImagesThanNrowMakeOneRow()
    {
        (int width, int height, int columns, int rows) = ImageGrid.Layout(count: 3, width: 4, height: 4, nrow: 8);
        Assert.Equal((3 * 6 + 2, 6 + 2, 3, 1), (width, height, columns, rows));
    }

    [Fact]
    public void DefaultsAreEightPerRowAndTwoPixels()
    {
        (int width, int height, int columns, int rows) = ImageGrid.Layout(count: 16, width: 32, height: 32);
        Assert.Equal((8 * 34 + 2, 2 * 34 + 2, 8, 2), (width, height, columns, rows));
    }

    [Fact]
    public void SingleImageHasNoBorder()
    {
        DecodedImage grid = ImageGrid.Arrange(NumberedImages(1, 3, 2), 1, 3, 2, 1);
        Assert.Equal((3, 2), (grid.Width, grid.Height));
        Assert.Equal(NumberedImages(1, 3, 2), grid.Pixels);
    }

    [Fact]
    public void PadValueAndZeroPadding()
    {
        DecodedImage padded = ImageGrid.Arrange(NumberedImages(2, 1, 1), 2, 1, 1, 1, nrow: 2, padding: 1, padValue: 200);
        Assert.Equal(new byte[] { 200, 200, 200, 200, 200, 200, 1, 200, 11, 200, 200, 200, 200, 200, 200 }, padded.Pixels);

        DecodedImage tight = ImageGrid.Arrange(NumberedImages(4, 1, 1), 4, 1, 1, 1, nrow: 2, padding: 0);
        Assert.Equal(new byte[] { 1, 11, 21, 31 }, tight.Pixels);
    }

    [Fact]
    public void ArrangesDecodedImagesOfTheSameSize()
    {
        var red = new DecodedImage(1, 1, 3, [255, 0, 0]);
        var blue = new DecodedImage(1, 1, 3, [0, 0, 255]);

        DecodedImage grid = ImageGrid.Arrange([red, blue], nrow: 1, padding: 1);

        Assert.Equal((3, 5), (grid.Width, grid.Height));
        Assert.Equal(255, grid.At(1, 1, 0));
        Assert.Equal(255, grid.At(1, 3, 2));
        Assert.Throws<MediatorDiTException>(() => ImageGrid.Arrange([red, new DecodedImage(2, 1, 3, new byte[6])]));
    }

    [Fact]
    public void SaveGridWritesAPngOfTheTensor()
    {
        // Three RGB images of 2 x 2: image k is 1 in channel k and -1 elsewhere (pure red, green, blue).
        var images = new Tensor(3, 3, 2, 2);
        images.Span.Fill(-1f);
        for (int k = 0; k < 3; k++)
            images.Span.Slice((k * 3 + k) * 4, 4).Fill(1f);
        string path = _dir.File("grid.png");

        ImageGrid.SaveGrid(path, images, nrow: 2);

        DecodedImage png = PngDecoder.Read(path);
        Assert.Equal((2 * 4 + 2, 2 * 4 + 2, 3), (png.Width, png.Height, png.Channels));
        Assert.Equal(new byte[] { 255, 0, 0 }, Pixel(png, 2, 2));
        Assert.Equal(new byte[] { 0, 255, 0 }, Pixel(png, 7, 3));
        Assert.Equal(new byte[] { 0, 0, 255 }, Pixel(png, 3, 6));
        Assert.Equal(new byte[] { 0, 0, 0 }, Pixel(png, 7, 7));
        Assert.Equal(new byte[] { 0, 0, 0 }, Pixel(png, 4, 2));
    }

    private static byte[] Pixel(DecodedImage image, int x, int y) =>
        [image.At(x, y, 0), image.At(x, y, 1), image.At(x, y, 2)];

    [Fact]
    public void RejectsMismatchedBuffers()
    {
        Assert.Throws<MediatorDiTException>(() => ImageGrid.Arrange(new byte[5], 2, 1, 1, 3));
        Assert.Throws<MediatorDiTException>(() => ImageGrid.Layout(2, 1, 1, nrow: 0));
    }
}
