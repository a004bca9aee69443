using MediatorDiT.Nn;

namespace MediatorDiT.Tests.Nn;

/// <summary>Each fast kernel against its plain reference, and the resampling kernels against PyTorch's values.</summary>
public class KernelTests
{
    [Theory]
    [InlineData(3, 1)]
    [InlineData(5, 17)]
    [InlineData(4, 256)]
    public void SoftmaxMatchesReferenceAndSurvivesLargeLogits(int rows, int cols)
    {
        var x = TestData.Gaussian(rows * cols, 1, 30f);
        x[0] = 1000f; // would overflow exp without the max subtraction
        var fast = new float[x.Length];
        var reference = new float[x.Length];
        Softmax.Forward(x, fast, rows, cols);
        ReferenceSoftmax.Forward(x, reference, rows, cols);
        TestData.AssertClose(reference, fast, 1e-6f, "softmax");
        Assert.All(fast, v => Assert.True(float.IsFinite(v)));

        var dy = TestData.Gaussian(x.Length, 2);
        var dxFast = new float[x.Length];
        var dxRef = new float[x.Length];
        Softmax.Backward(fast, dy, dxFast, rows, cols);
        ReferenceSoftmax.Backward(reference, dy, dxRef, rows, cols);
        TestData.AssertClose(dxRef, dxFast, 1e-5f, "softmax backward");
    }

    [Theory]
    [InlineData(2, 7)]
    [InlineData(3, 384)]
    public void LayerNormMatchesReference(int rows, int cols)
    {
        var x = TestData.Gaussian(rows * cols, 3, 5f);
        for (int i = 0; i < cols; i++) x[i] += 100f; // a large mean must not cost precision
        var y = new float[x.Length];
        var yr = new float[x.Length];
        float[] m = new float[rows], r = new float[rows], m2 = new float[rows], r2 = new float[rows];
        LayerNorm.Forward(x, y, m, r, rows, cols);
        ReferenceLayerNorm.Forward(x, yr, m2, r2, rows, cols);
        TestData.AssertClose(yr, y, 1e-5f, "layernorm");

        var dy = TestData.Gaussian(x.Length, 4);
        var dx = new float[x.Length];
        var dxr = new float[x.Length];
        LayerNorm.Backward(x, m, r, dy, dx, new float[cols], rows, cols);
        ReferenceLayerNorm.Backward(x, m2, r2, dy, dxr, rows, cols);
        TestData.AssertClose(dxr, dx, 1e-4f, "layernorm backward");
    }

    [Fact]
    public void GeluMatchesReferenceIncludingTailsAndExtremes()
    {
        var x = TestData.Gaussian(1003, 5, 4f);
        x[0] = 50f;
        x[1] = -50f;
        x[2] = 0f;
        var y = new float[x.Length];
        var yr = new float[x.Length];
        Gelu.Forward(x, y);
        ReferenceGelu.Forward(x, yr);
        TestData.AssertClose(yr, y, 1e-6f, "gelu");
        Assert.Equal(50f, y[0]);
        Assert.Equal(0f, y[1], 6);

        var dy = TestData.Gaussian(x.Length, 6);
        var dx = new float[x.Length];
        var dxr = new float[x.Length];
        Gelu.Backward(x, dy, dx);
        ReferenceGelu.Backward(x, dy, dxr);
        TestData.AssertClose(dxr, dx, 1e-5f, "gelu backward");
    }

    [Fact]
    public void SiluBackwardMatchesFiniteDifferences()
    {
        var x = TestData.Gaussian(64, 7, 3f);
        var dy = TestData.Gaussian(64, 8);
        var dx = new float[64];
        Silu.Backward(x, dy, dx);
        for (int i = 0; i < x.Length; i++)
        {
            double h = 1e-3, xi = x[i];
            double f(double v) => v / (1 + Math.Exp(-v));
            double numeric = (f(xi + h) - f(xi - h)) / (2 * h) * dy[i];
            Assert.Equal(numeric, dx[i], 3);
        }
    }

    [Fact]
    public void BilinearUpsampleMatchesPyTorch()
    {
        // F.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), size=(4, 4), mode='bilinear')
        float[] x = [1, 2, 3, 4];
        var y = new float[16];
        BilinearResize.Forward(x, y, 1, 2, 2, 4, 4);
        float[] expected =
        [
            1.0f, 1.25f, 1.75f, 2.0f,
            1.5f, 1.75f, 2.25f, 2.5f,
            2.5f, 2.75f, 3.25f, 3.5f,
            3.0f, 3.25f, 3.75f, 4.0f,
        ];
        TestData.AssertClose(expected, y, 1e-7f, "bilinear 2->4");
    }

    [Fact]
    public void BilinearDownsampleUsesHalfPixelCentres()
    {
        // 7 -> 4 along one axis: src = (d + 0.5) * 7/4 - 0.5 = 0.375, 2.125, 3.875, 5.625.
        var x = Enumerable.Range(0, 7).Select(i => (float)(i * i)).ToArray();
        var y = new float[4];
        BilinearResize.Forward(x, y, 1, 1, 7, 1, 4);
        double Lerp(double s) { int i = (int)s; double l = s - i; return (1 - l) * x[i] + l * x[Math.Min(i + 1, 6)]; }
        float[] expected = [(float)Lerp(0.375), (float)Lerp(2.125), (float)Lerp(3.875), (float)Lerp(5.625)];
        TestData.AssertClose(expected, y, 1e-6f, "bilinear 7->4");
    }

    [Fact]
    public void BilinearBackwardIsTheTransposeOfForward()
    {
        // <R x, g> == <x, R^T g> for random x, g.
        int p = 3, h = 7, w = 7, oh = 5, ow = 9;
        var x = TestData.Gaussian(p * h * w, 9);
        var g = TestData.Gaussian(p * oh * ow, 10);
        var y = new float[g.Length];
        var dx = new float[x.Length];
        BilinearResize.Forward(x, y, p, h, w, oh, ow);
        BilinearResize.BackwardAccumulate(g, dx, p, h, w, oh, ow);
        double lhs = 0, rhs = 0;
        for (int i = 0; i < y.Length; i++) lhs += y[i] * g[i];
        for (int i = 0; i < x.Length; i++) rhs += x[i] * dx[i];
        Assert.Equal(lhs, rhs, 3);
    }

    [Fact]
    public void LinearResizeAlignCornersKeepsEndsAndInterpolates()
    {
        float[] x = [0, 10, 20, 40];
        var y = new float[7];
        LinearResize.Forward(x, y, 1, 4, 7);
        // src = d * 3/6 = 0, .5, 1, 1.5, 2, 2.5, 3
        float[] expected = [0, 5, 10, 15, 20, 30, 40];
        TestData.AssertClose(expected, y, 1e-6f, "linear align_corners");
    }

    [Fact]
    public void AdaptivePoolUsesPyTorchBinsWhenTheyOverlap()
    {
        // 5 -> 3 bins: [0,2), [1,4), [3,5) as floor(i*5/3) .. ceil((i+1)*5/3).
        int c = 2;
        var x = new float[5 * 5 * c];
        for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++)
        {
            x[(i * 5 + j) * c] = i * 5 + j;
            x[(i * 5 + j) * c + 1] = -(i * 5 + j);
        }
        var y = new float[3 * 3 * c];
        AdaptiveAvgPool.Forward(x, c, y, 5, 5, c, 3, 3);
        (int, int)[] bins = [(0, 2), (1, 4), (3, 5)];
        for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
        {
            double s = 0;
            int cnt = 0;
            for (int a = bins[i].Item1; a < bins[i].Item2; a++)
            for (int b = bins[j].Item1; b < bins[j].Item2; b++) { s += a * 5 + b; cnt++; }
            Assert.Equal(s / cnt, y[(i * 3 + j) * c], 4);
            Assert.Equal(-s / cnt, y[(i * 3 + j) * c + 1], 4);
        }
    }

    [Fact]
    public void DepthwiseConvBackwardMatchesFiniteDifferences()
    {
        int h = 4, w = 5, c = 3;
        var x = TestData.Gaussian(h * w * c, 11);
        var weight = TestData.Gaussian(c * 9, 12);
        var bias = TestData.Gaussian(c, 13);
        var g = TestData.Gaussian(h * w * c, 14);
        var taps = new float[9 * c];
        DepthwiseConv3x3.TransposeWeight(weight, taps, c);

        double Loss(float[] xv, float[] tv)
        {
            var y = new float[h * w * c];
            DepthwiseConv3x3.Forward(xv, c, tv, bias, y, h, w, c, accumulate: false);
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += y[i] * g[i];
            return s;
        }

        var dx = new float[x.Length];
        var dTaps = new float[taps.Length];
        var dBias = new float[c];
        DepthwiseConv3x3.BackwardAccumulate(x, c, taps, g, dx, dTaps, dBias, h, w, c);
        const float eps = 1e-2f;
        foreach (int i in new[] { 0, 7, 20, x.Length - 1 })
        {
            var xp = (float[])x.Clone(); xp[i] += eps;
            var xm = (float[])x.Clone(); xm[i] -= eps;
            Assert.Equal((Loss(xp, taps) - Loss(xm, taps)) / (2 * eps), dx[i], 2);
        }
        for (int i = 0; i < taps.Length; i++)
        {
            var tp = (float[])taps.Clone(); tp[i] += eps;
            var tm = (float[])taps.Clone(); tm[i] -= eps;
            Assert.Equal((Loss(x, tp) - Loss(x, tm)) / (2 * eps), dTaps[i], 2);
        }
        for (int ch = 0; ch < c; ch++)
        {
            double s = 0;
            for (int p = 0; p < h * w; p++) s += g[p * c + ch];
            Assert.Equal(s, dBias[ch], 4);
        }
    }

    [Fact]
    public void PatchifyAndUnpatchifyAreInverse()
    {
        int c = 3, size = 8, p = 2, grid = size / p;
        var img = TestData.Gaussian(c * size * size, 15);
        var cols = new float[grid * grid * c * p * p];
        Patchify.ImageToPatches(img, cols, c, size, size, p);
        // Token (1, 2), channel 2, pixel offset (1, 0) comes from img[2, 3, 4].
        Assert.Equal(img[2 * 64 + 3 * 8 + 4], cols[(1 * grid + 2) * c * p * p + (2 * p + 1) * p + 0]);
        var back = new float[img.Length];
        Patchify.PatchesToImage(cols, back, c, size, size, p);
        Assert.Equal(img, back);

        // Unpatchify reads tokens laid out (pi, pj, c).
        var tokens = TestData.Gaussian(grid * grid * p * p * c, 16);
        var outImg = new float[c * size * size];
        Patchify.Unpatchify(tokens, outImg, c, grid, p, c);
        Assert.Equal(tokens[(2 * grid + 1) * p * p * c + (1 * p + 0) * c + 1], outImg[1 * 64 + (2 * p + 1) * 8 + 1 * p + 0]);
        var tokensBack = new float[tokens.Length];
        Patchify.UnpatchifyBackward(outImg, tokensBack, c, grid, p, c);
        Assert.Equal(tokens, tokensBack);
    }
}
