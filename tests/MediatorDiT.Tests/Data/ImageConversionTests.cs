using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Data;

public class ImageConversionTests
{
    // Expected bytes computed with float32 NumPy in torchvision's order:
    // trunc(clamp((clamp(x, -1, 1) + 1) / 2 * 255 + 0.5, 0, 255)).
    [Theory]
    [InlineData(-1f, 0)]
    [InlineData(1f, 255)]
    [InlineData(0f, 128)]
    [InlineData(-2f, 0)]
    [InlineData(5f, 255)]
    [InlineData(-0.5f, 64)]
    [InlineData(0.5f, 191)]
    [InlineData(0.3f, 166)]
    [InlineData(-0.7f, 38)]
    [InlineData(0.996f, 254)]
    [InlineData(0.9960784912109375f, 255)]
    // Values on a rounding boundary, where float32 steps decide (real arithmetic gives one less).
    [InlineData(-0.9960784316062927f, 1)]
    [InlineData(-0.4941176474094391f, 65)]
    // Where DiT's clamp(127.5 x + 128) differs by float rounding, torchvision's result is kept.
    [InlineData(-0.800000011920929f, 25)]
    [InlineData(0.6901959776878357f, 216)]
    [InlineData(float.NaN, 0)]
    [InlineData(float.PositiveInfinity, 255)]
    [InlineData(float.NegativeInfinity, 0)]
    public void ToByteMatchesTorchvision(float value, int expected) =>
        Assert.Equal((byte)expected, ImageConversion.ToByte(value));

    [Theory]
    [InlineData(0, -1f)]
    [InlineData(1, -0.9921568632125854f)]
    [InlineData(127, -0.003921568393707275f)]
    [InlineData(128, 0.003921627998352051f)]
    [InlineData(255, 1f)]
    public void ToFloatMatchesToTensorThenNormalize(int value, float expected) =>
        Assert.Equal(expected, ImageConversion.ToFloat((byte)value));

    [Fact]
    public void EveryByteSurvivesARoundTrip()
    {
        for (int b = 0; b < 256; b++)
            Assert.Equal((byte)b, ImageConversion.ToByte(ImageConversion.ToFloat((byte)b)));
    }

    [Fact]
    public void ToBytesInterleavesChannels()
    {
        // Two RGB images of 1 x 2 pixels; channel c of pixel p of image i holds a distinct value.
        var images = new Tensor(2, 3, 1, 2);
        for (int i = 0; i < 2; i++)
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 2; p++)
                    images.Span[((i * 3 + c) * 2) + p] = ImageConversion.ToFloat((byte)(100 * i + 10 * c + p));

        byte[] bytes = ImageConversion.ToBytes(images);

        Assert.Equal(new byte[] { 0, 10, 20, 1, 11, 21, 100, 110, 120, 101, 111, 121 }, bytes);
    }

    [Fact]
    public void FromBytesIsTheInverseLayout()
    {
        byte[] bytes = [0, 10, 20, 1, 11, 21, 100, 110, 120, 101, 111, 121];

        Tensor images = ImageConversion.FromBytes(bytes, count: 2, height: 1, width: 2, channels: 3);

        Assert.Equal(new[] { 2, 3, 1, 2 }, images.Shape);
        Assert.Equal(ImageConversion.ToFloat(110), images.Span[(1 * 3 + 1) * 2 + 0]);
        Assert.Equal(bytes, ImageConversion.ToBytes(images));
    }

    [Fact]
    public void GreyImages()
    {
        var images = Tensor.FromArray([-1f, 0f, 1f, 0.5f], 1, 1, 2, 2);

        DecodedImage image = ImageConversion.ToImage(images, 0);

        Assert.Equal((2, 2, 1), (image.Width, image.Height, image.Channels));
        Assert.Equal(new byte[] { 0, 128, 255, 191 }, image.Pixels);
    }

    [Fact]
    public void FromImageDropsAlphaOrTakesLuma()
    {
        var rgba = new DecodedImage(1, 1, 4, [255, 0, 0, 7]);

        Tensor rgb = ImageConversion.FromImage(rgba);
        Tensor grey = ImageConversion.FromImage(rgba, channels: 1);

        Assert.Equal(new[] { 1, 3, 1, 1 }, rgb.Shape);
        Assert.Equal(new[] { 1f, -1f, -1f }, rgb.Span.ToArray());
        Assert.Equal(ImageConversion.ToFloat(76), grey.Span[0]);
    }

    [Fact]
    public void RejectsOtherShapes()
    {
        Assert.Throws<MediatorDiTException>(() => ImageConversion.ToBytes(new Tensor(2, 2, 4, 4)));
        Assert.Throws<MediatorDiTException>(() => ImageConversion.ToBytes(new Tensor(3, 4, 4)));
        Assert.Throws<MediatorDiTException>(() => ImageConversion.FromBytes(new byte[10], 1, 2, 2, 3));
        Assert.Throws<MediatorDiTException>(() => ImageConversion.ToImage(new Tensor(1, 3, 2, 2), 1));
    }
}
