using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Data;

/// <summary>
/// Lays B images out as torchvision's make_grid does: <c>nrow</c> images per row (fewer when the
/// batch is smaller), rows filled left to right, a border of <c>padding</c> pixels around and
/// between the cells, unused cells and borders filled with the pad value (0, black). Image k sits
/// at column (k % cols) (W + padding) + padding, row (k / cols) (H + padding) + padding; the grid is
/// cols (W + padding) + padding wide. As in make_grid, a batch of one image is returned as it is,
/// without a border. Unlike make_grid, grey images stay one channel instead of becoming RGB.
/// </summary>
public static class ImageGrid
{
    /// <summary>make_grid's default border, in pixels.</summary>
    public const int DefaultPadding = 2;
    /// <summary>make_grid's default nrow.</summary>
    public const int DefaultImagesPerRow = 8;

    /// <summary>Grid size in pixels and the number of cells across and down.</summary>
    public static (int Width, int Height, int Columns, int Rows) Layout(int count, int width, int height, int nrow = DefaultImagesPerRow, int padding = DefaultPadding)
    {
        if (count < 1 || width < 1 || height < 1 || nrow < 1 || padding < 0)
            throw new MediatorDiTException($"an image grid needs at least one image of positive size, at least one image per row and padding >= 0 (got {count} images of {width} x {height}, {nrow} per row, padding {padding}).");
        if (count == 1) return (width, height, 1, 1);
        int columns = Math.Min(nrow, count);
        int rows = (count + columns - 1) / columns;
        long gridWidth = (long)columns * (width + padding) + padding;
        long gridHeight = (long)rows * (height + padding) + padding;
        if (gridWidth > int.MaxValue || gridHeight > int.MaxValue)
            throw new MediatorDiTException($"a grid of {count} images of {width} x {height} would be {gridWidth} x {gridHeight} pixels, too large.");
        return ((int)gridWidth, (int)gridHeight, columns, rows);
    }

    /// <summary>Arranges <paramref name="count"/> images given as count x H x W x C bytes.</summary>
    public static DecodedImage Arrange(ReadOnlySpan<byte> imagesBhwc, int count, int width, int height, int channels,
        int nrow = DefaultImagesPerRow, int padding = DefaultPadding, byte padValue = 0)
    {
        (int gridWidth, int gridHeight, int columns, _) = Layout(count, width, height, nrow, padding);
        if (channels is not (1 or 3 or 4))
            throw new MediatorDiTException($"grid images have 1, 3 or 4 channels, not {channels}.");
        int rowBytes = width * channels;
        int imageBytes = rowBytes * height;
        if (imagesBhwc.Length != (long)count * imageBytes)
            throw new MediatorDiTException($"{count} images of {width} x {height} x {channels} need {(long)count * imageBytes} bytes, but {imagesBhwc.Length} were given.");
        if (count == 1) return new DecodedImage(width, height, channels, imagesBhwc.ToArray());

        long gridBytes = (long)gridWidth * gridHeight * channels;
        if (gridBytes > Array.MaxLength)
            throw new MediatorDiTException($"a grid of {gridWidth} x {gridHeight} pixels does not fit one array.");
        var grid = new byte[gridBytes];
        if (padValue != 0) grid.AsSpan().Fill(padValue);
        int gridRowBytes = gridWidth * channels;
        for (int k = 0; k < count; k++)
        {
            int left = (k % columns) * (width + padding) + padding;
            int top = (k / columns) * (height + padding) + padding;
            ReadOnlySpan<byte> image = imagesBhwc.Slice(k * imageBytes, imageBytes);
            for (int y = 0; y < height; y++)
                image.Slice(y * rowBytes, rowBytes).CopyTo(grid.AsSpan((top + y) * gridRowBytes + left * channels, rowBytes));
        }
        return new DecodedImage(gridWidth, gridHeight, channels, grid);
    }

    /// <summary>Arranges images of equal size and channels.</summary>
    public static DecodedImage Arrange(IReadOnlyList<DecodedImage> images, int nrow = DefaultImagesPerRow, int padding = DefaultPadding, byte padValue = 0)
    {
        if (images.Count == 0)
            throw new MediatorDiTException("an image grid needs at least one image.");
        DecodedImage first = images[0];
        int imageBytes = first.Pixels.Length;
        var all = new byte[(long)images.Count * imageBytes];
        for (int k = 0; k < images.Count; k++)
        {
            DecodedImage image = images[k];
            if (image.Width != first.Width || image.Height != first.Height || image.Channels != first.Channels)
                throw new MediatorDiTException($"grid image {k} is {image.Width} x {image.Height} x {image.Channels}, but image 0 is {first.Width} x {first.Height} x {first.Channels}; all must match.");
            image.Pixels.CopyTo(all, (long)k * imageBytes);
        }
        return Arrange(all, images.Count, first.Width, first.Height, first.Channels, nrow, padding, padValue);
    }

    /// <summary>A (B, C, H, W) tensor in [-1, 1] (C = 1 or 3) as a grid, converted as <see cref="ImageConversion"/> does.</summary>
    public static DecodedImage FromTensor(Tensor images, int nrow = DefaultImagesPerRow, int padding = DefaultPadding)
    {
        byte[] bytes = ImageConversion.ToBytes(images);
        return Arrange(bytes, images.Dim(0), images.Dim(3), images.Dim(2), images.Dim(1), nrow, padding);
    }

    /// <summary>Writes the grid of a (B, C, H, W) tensor in [-1, 1] as a PNG file (atomically), like torchvision's save_image.</summary>
    public static void SaveGrid(string path, Tensor images, int nrow = DefaultImagesPerRow, int padding = DefaultPadding) =>
        PngEncoder.Write(path, FromTensor(images, nrow, padding));
}
