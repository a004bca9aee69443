using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Data;

/// <summary>
/// Model images (float, (B, C, H, W), values in [-1, 1], C = 1 or 3) to and from 8-bit pixels
/// (B, H, W, C). Both directions repeat PyTorch's float32 operations step by step, so the bytes
/// equal those of the reference scripts:
/// to bytes as torchvision's save_image(x, normalize=True, value_range=(-1, 1)) does,
/// u = (clamp(x, -1, 1) + 1) / 2, then trunc(clamp(u * 255 + 0.5, 0, 255)), which is also DiT's
/// sample_ddp.py clamp(127.5 x + 128, 0, 255) for the .npz files up to float rounding; and back as
/// ToTensor plus Normalize(0.5, 0.5) do, x = (b / 255 - 0.5) / 0.5.
/// </summary>
public static class ImageConversion
{
    /// <summary>One value in [-1, 1] to a byte (NaN becomes 0).</summary>
    public static byte ToByte(float value)
    {
        if (float.IsNaN(value)) return 0;
        // Each step rounded to float32, in torchvision's order.
        float unit = (Math.Clamp(value, -1f, 1f) + 1f) / 2f;
        float scaled = (float)(unit * 255f);
        scaled = (float)(scaled + 0.5f);
        return (byte)Math.Clamp(scaled, 0f, 255f);
    }

    /// <summary>One byte to [-1, 1].</summary>
    public static float ToFloat(byte value)
    {
        float unit = value / 255f;
        return (float)(unit - 0.5f) / 0.5f;
    }

    /// <summary>All images of a (B, C, H, W) tensor as B x H x W x C bytes.</summary>
    public static byte[] ToBytes(Tensor images)
    {
        (int b, int c, int h, int w) = CheckImages(images);
        var bytes = new byte[(long)b * c * h * w];
        ToBytes(images, bytes);
        return bytes;
    }

    /// <summary>Fills <paramref name="destination"/> (B x H x W x C bytes) from a (B, C, H, W) tensor.</summary>
    public static void ToBytes(Tensor images, Span<byte> destination)
    {
        (int b, int c, int h, int w) = CheckImages(images);
        int imageSize = c * h * w;
        if (destination.Length != (long)b * imageSize)
            throw new MediatorDiTException($"images [{images.ShapeString}] need {(long)b * imageSize} bytes, but the destination holds {destination.Length}.");
        ReadOnlySpan<float> source = images.Span;
        for (int i = 0; i < b; i++)
            ImageToBytes(source.Slice(i * imageSize, imageSize), c, h, w, destination.Slice(i * imageSize, imageSize));
    }

    /// <summary>One image: planes (C, H, W) to interleaved (H, W, C) bytes.</summary>
    public static void ImageToBytes(ReadOnlySpan<float> chw, int channels, int height, int width, Span<byte> hwc)
    {
        int plane = height * width;
        if (chw.Length != channels * plane || hwc.Length != chw.Length)
            throw new MediatorDiTException($"a {channels} x {height} x {width} image needs {channels * plane} values and as many bytes, but got {chw.Length} values and {hwc.Length} bytes.");
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<float> source = chw.Slice(c * plane, plane);
            for (int p = 0; p < plane; p++) hwc[p * channels + c] = ToByte(source[p]);
        }
    }

    /// <summary>Image <paramref name="index"/> of a (B, C, H, W) tensor as an 8-bit image.</summary>
    public static DecodedImage ToImage(Tensor images, int index)
    {
        (int b, int c, int h, int w) = CheckImages(images);
        if (index < 0 || index >= b)
            throw new MediatorDiTException($"image {index} was asked for, but the batch [{images.ShapeString}] has {b}.");
        int size = c * h * w;
        var pixels = new byte[size];
        ImageToBytes(images.Span.Slice(index * size, size), c, h, w, pixels);
        return new DecodedImage(w, h, c, pixels);
    }

    /// <summary>B x H x W x C bytes to a (B, C, H, W) tensor in [-1, 1].</summary>
    public static Tensor FromBytes(ReadOnlySpan<byte> bhwc, int count, int height, int width, int channels)
    {
        if (count < 1 || height < 1 || width < 1 || channels is not (1 or 3))
            throw new MediatorDiTException($"images of {count} x {height} x {width} x {channels} cannot become a model batch; sizes must be positive and channels 1 or 3.");
        int size = channels * height * width;
        if (bhwc.Length != (long)count * size)
            throw new MediatorDiTException($"{count} images of {height} x {width} x {channels} need {(long)count * size} bytes, but {bhwc.Length} were given.");
        var tensor = new Tensor(count, channels, height, width);
        Span<float> destination = tensor.Span;
        int plane = height * width;
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> image = bhwc.Slice(i * size, size);
            Span<float> planes = destination.Slice(i * size, size);
            for (int p = 0; p < plane; p++)
                for (int c = 0; c < channels; c++)
                    planes[c * plane + p] = ToFloat(image[p * channels + c]);
        }
        return tensor;
    }

    /// <summary>
    /// A decoded image as a (1, C, H, W) batch with <paramref name="channels"/> = 3 (RGB, alpha
    /// dropped) or 1 (luma), converted as <see cref="DecodedImage.ToRgb"/> and <see cref="DecodedImage.ToGrey"/> do.
    /// </summary>
    public static Tensor FromImage(DecodedImage image, int channels = 3)
    {
        DecodedImage converted = channels switch
        {
            3 => image.ToRgb(),
            1 => image.ToGrey(),
            _ => throw new MediatorDiTException($"model images have 1 or 3 channels, not {channels}."),
        };
        return FromBytes(converted.Pixels, 1, converted.Height, converted.Width, channels);
    }

    private static (int B, int C, int H, int W) CheckImages(Tensor images)
    {
        if (images.Rank != 4 || images.Dim(1) is not (1 or 3) || images.Length == 0)
            throw new MediatorDiTException($"images must be a non-empty (B, C, H, W) tensor with C = 1 or 3, not [{images.ShapeString}].");
        return (images.Dim(0), images.Dim(1), images.Dim(2), images.Dim(3));
    }
}
