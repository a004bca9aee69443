using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Nn;

/// <summary>Conv2d, GroupNorm and nearest upsampling: each fast kernel against its plain reference, at odd sizes.</summary>
public class ConvolutionKernelTests
{
    public static TheoryData<Conv2dGeometry, int, int, int> ConvCases => new()
    {
        // geometry, batch, height, width
        { Conv2dGeometry.Square(3, 5, 3, 1, 1), 2, 7, 9 },
        { new Conv2dGeometry(4, 6, 3, 3, 2, 2, PadTop: 0, PadBottom: 1, PadLeft: 0, PadRight: 1), 2, 7, 10 },
        { new Conv2dGeometry(4, 3, 3, 3, 2, 2, PadTop: 0, PadBottom: 1, PadLeft: 0, PadRight: 1), 1, 8, 8 },
        { Conv2dGeometry.Square(6, 4, 1), 3, 5, 3 },
        { new Conv2dGeometry(2, 3, 3, 5, 2, 1, PadTop: 2, PadBottom: 0, PadLeft: 1, PadRight: 3), 2, 6, 7 },
        { Conv2dGeometry.Square(3, 2, 5, 1, 2), 1, 4, 3 },
        { new Conv2dGeometry(5, 7, 2, 2, 3, 3, 1, 1, 1, 1), 1, 11, 13 },
        { Conv2dGeometry.Square(33, 17, 3, 1, 1), 1, 13, 11 },
    };

    [Theory]
    [MemberData(nameof(ConvCases))]
    public void Conv2dMatchesReference(Conv2dGeometry g, int batch, int height, int width)
    {
        int oh = g.OutputHeight(height), ow = g.OutputWidth(width);
        var x = Tensor.FromArray(TestData.Gaussian(batch * g.InChannels * height * width, 11), batch, g.InChannels, height, width);
        var weight = Tensor.FromArray(TestData.Gaussian(g.OutChannels * g.PatchSize, 12, 0.3f), g.WeightShape);
        var bias = Tensor.FromArray(TestData.Gaussian(g.OutChannels, 13), g.OutChannels);
        var expected = new float[batch * g.OutChannels * oh * ow];
        ReferenceConv2d.Forward(x.Span, weight.Span, bias.Span, expected, g, batch, height, width);

        // Default bands, then bands of one or two output rows (several per thread), reusing one workspace.
        var workspace = new Conv2dWorkspace();
        foreach (int band in new[] { Conv2d.DefaultBandFloats, 1, 2 * g.PatchSize * ow })
        {
            var y = new Tensor(batch, g.OutChannels, oh, ow);
            y.Span.Fill(float.NaN);
            Conv2d.Forward(x, weight, bias, y, g, batch, height, width, workspace, band);
            TestData.AssertClose(expected, y.Span, 1e-5f, $"conv {g} band {band}");
        }

        var noBias = new Tensor(batch, g.OutChannels, oh, ow);
        var expectedNoBias = new float[noBias.Length];
        ReferenceConv2d.Forward(x.Span, weight.Span, [], expectedNoBias, g, batch, height, width);
        Conv2d.Forward(x, weight, null, noBias, g, batch, height, width);
        TestData.AssertClose(expectedNoBias, noBias.Span, 1e-5f, $"conv {g} without bias");
    }

    [Fact]
    public void Conv2dOutputSizesFollowPyTorch()
    {
        var down = new Conv2dGeometry(1, 1, 3, 3, 2, 2, 0, 1, 0, 1);
        Assert.Equal(4, down.OutputHeight(8));
        Assert.Equal(3, down.OutputHeight(7));
        Assert.Equal(8, Conv2dGeometry.Square(1, 1, 3, 1, 1).OutputWidth(8));
        Assert.Throws<ArgumentException>(() => Conv2dGeometry.Square(1, 1, 5).Validate(3, 3));
    }

    [Theory]
    [InlineData(1, 32, 5, 7, 32, false)]
    [InlineData(2, 6, 7, 5, 3, true)]
    [InlineData(3, 64, 3, 3, 32, true)]
    [InlineData(1, 9, 1, 1, 9, false)]
    public void GroupNormMatchesReference(int batch, int channels, int height, int width, int groups, bool silu)
    {
        int spatial = height * width, n = batch * channels * spatial;
        var xData = TestData.Gaussian(n, 21, 3f);
        for (int i = 0; i < spatial; i++) xData[i] += 50f; // a large mean must not cost precision
        var x = Tensor.FromArray(xData, batch, channels, height, width);
        var gamma = Tensor.FromArray(TestData.Gaussian(channels, 22), channels);
        var beta = Tensor.FromArray(TestData.Gaussian(channels, 23), channels);
        var expected = new float[n];
        ReferenceGroupNorm.Forward(x.Span, gamma.Span, beta.Span, expected, batch, channels, spatial, groups, 1e-6f, silu);

        var y = new Tensor(x.Shape);
        GroupNorm.Forward(x, gamma, beta, y, batch, channels, spatial, groups, 1e-6f, silu);
        TestData.AssertClose(expected, y.Span, 1e-5f, "groupnorm");

        var inPlace = x.Clone();
        GroupNorm.Forward(inPlace, gamma, beta, inPlace, batch, channels, spatial, groups, 1e-6f, silu);
        TestData.AssertClose(expected, inPlace.Span, 1e-5f, "groupnorm in place");
    }

    [Fact]
    public void GroupNormRejectsChannelsThatDoNotSplit()
    {
        var x = new Tensor(1, 6, 2, 2);
        var p = new Tensor(6);
        Assert.Throws<ArgumentException>(() => GroupNorm.Forward(x, p, p, x, 1, 6, 4, 4));
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 5, 7)]
    public void NearestUpsampleMatchesDefinition(int planes, int height, int width)
    {
        var x = TestData.Gaussian(planes * height * width, 31);
        var fast = new float[planes * 4 * height * width];
        var reference = new float[fast.Length];
        NearestUpsample2x.Forward(x, fast, planes, height, width);
        ReferenceNearestUpsample2x.Forward(x, reference, planes, height, width);
        Assert.Equal(reference, fast);
    }
}
