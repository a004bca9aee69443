using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

public class DecodedImageTests
{
    [Fact]
    public void GreyUsesPillowsLumaWeights()
    {
        // (19595 R + 38470 G + 7471 B + 32768) >> 16 for pure red, green, blue, white and a mid colour.
        var rgba = new DecodedImage(5, 1, 4, [255, 0, 0, 9, 0, 255, 0, 9, 0, 0, 255, 9, 255, 255, 255, 0, 10, 200, 30, 0]);

        DecodedImage grey = rgba.ToGrey();

        Assert.Equal(1, grey.Channels);
        Assert.Equal(new byte[] { 76, 150, 29, 255, 124 }, grey.Pixels);
    }

    [Fact]
    public void RgbRepeatsGreyAndDropsAlpha()
    {
        Assert.Equal(new byte[] { 7, 7, 7, 200, 200, 200 }, new DecodedImage(2, 1, 1, [7, 200]).ToRgb().Pixels);
        Assert.Equal(new byte[] { 1, 2, 3, 5, 6, 7 }, new DecodedImage(1, 2, 4, [1, 2, 3, 4, 5, 6, 7, 8]).ToRgb().Pixels);
    }

    [Fact]
    public void RgbaAddsOpaqueAlpha()
    {
        Assert.Equal(new byte[] { 1, 2, 3, 255 }, new DecodedImage(1, 1, 3, [1, 2, 3]).ToRgba().Pixels);
        Assert.Equal(new byte[] { 9, 9, 9, 255 }, new DecodedImage(1, 1, 1, [9]).ToRgba().Pixels);
    }

    [Fact]
    public void ConversionToTheSameLayoutReturnsTheImage()
    {
        var rgb = new DecodedImage(1, 1, 3, [1, 2, 3]);
        Assert.Same(rgb, rgb.ToRgb());
    }

    [Fact]
    public void AtIndexesHwc()
    {
        var image = new DecodedImage(3, 2, 3, Enumerable.Range(0, 18).Select(i => (byte)i).ToArray());
        Assert.Equal(3 * (1 * 3 + 2) + 1, image.At(x: 2, y: 1, channel: 1));
    }

    [Fact]
    public void RejectsInconsistentBuffers()
    {
        Assert.Throws<MediatorDiTException>(() => new DecodedImage(2, 2, 3, new byte[11]));
        Assert.Throws<MediatorDiTException>(() => new DecodedImage(2, 2, 2, new byte[8]));
    }
}
