using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Nn;

/// <summary>
/// The classifier's kernels: the batched im2col convolution (forward and backward) against the direct
/// loops, the direct backward loops against finite differences, max pooling, ReLU and cross-entropy.
/// </summary>
public class ClassifierKernelTests
{
    public static TheoryData<Conv2dGeometry, int, int, int> Cases => new()
    {
        // geometry, batch, height, width
        { Conv2dGeometry.Square(1, 4, 3, 1, 1), 5, 8, 8 },
        { Conv2dGeometry.Square(3, 5, 3, 1, 1), 3, 7, 9 },
        { new Conv2dGeometry(4, 6, 3, 3, 2, 2, PadTop: 0, PadBottom: 1, PadLeft: 0, PadRight: 1), 2, 7, 10 },
        { new Conv2dGeometry(2, 3, 3, 5, 2, 1, PadTop: 2, PadBottom: 0, PadLeft: 1, PadRight: 3), 3, 6, 7 },
        { Conv2dGeometry.Square(6, 4, 1), 4, 5, 3 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BatchedConvolutionMatchesTheDirectLoops(Conv2dGeometry g, int batch, int height, int width)
    {
        int oh = g.OutputHeight(height), ow = g.OutputWidth(width);
        var x = TestData.Gaussian(batch * g.InChannels * height * width, 21);
        var w = TestData.Gaussian(g.OutChannels * g.PatchSize, 22, 0.3f);
        var b = TestData.Gaussian(g.OutChannels, 23);
        var dy = TestData.Gaussian(batch * g.OutChannels * oh * ow, 24);

        var expectedY = new float[dy.Length];
        ReferenceConv2d.Forward(x, w, b, expectedY, g, batch, height, width);
        var expectedDw = new float[w.Length];
        var expectedDb = new float[b.Length];
        var expectedDx = new float[x.Length];
        ReferenceConv2dBackward.Backward(x, w, dy, expectedDw, expectedDb, expectedDx, g, batch, height, width);

        var workspace = new Conv2dWorkspace();
        var saved = ComputeContext.Raw;
        try
        {
            foreach (int threads in new[] { 1, 2, 3 })
            {
                ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
                var y = new float[dy.Length];
                y.AsSpan().Fill(float.NaN);
                Conv2dBatch.Forward(x, w, b, y, g, batch, height, width, workspace);
                TestData.AssertClose(expectedY, y, 1e-5f, $"y {g} threads {threads}");

                // Gradients accumulate into dW, db; dx is overwritten.
                var dw = Enumerable.Repeat(0.5f, w.Length).ToArray();
                var db = Enumerable.Repeat(-1f, b.Length).ToArray();
                var dx = Enumerable.Repeat(float.NaN, x.Length).ToArray();
                Conv2dBatch.Backward(x, w, dy, dw, db, dx, g, batch, height, width, workspace);
                TestData.AssertClose(expectedDw.Select(v => v + 0.5f).ToArray(), dw, 1e-5f, $"dW {g} threads {threads}");
                TestData.AssertClose(expectedDb.Select(v => v - 1f).ToArray(), db, 1e-5f, $"db {g} threads {threads}");
                TestData.AssertClose(expectedDx, dx, 1e-5f, $"dx {g} threads {threads}");

                // Without an input gradient (the first layer) the weight gradients are the same.
                var dw2 = new float[w.Length];
                var db2 = new float[b.Length];
                Conv2dBatch.Backward(x, w, dy, dw2, db2, Span<float>.Empty, g, batch, height, width, workspace);
                TestData.AssertClose(expectedDw, dw2, 1e-5f, $"dW without dx {g}");
            }
        }
        finally
        {
            ComputeContext.Raw = saved;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DirectBackwardLoopsMatchFiniteDifferences(Conv2dGeometry g, int batch, int height, int width)
    {
        // L = sum r . conv(x): linear in x, W and b, so central differences are exact up to rounding.
        int oh = g.OutputHeight(height), ow = g.OutputWidth(width);
        var x = TestData.Gaussian(batch * g.InChannels * height * width, 31);
        var w = TestData.Gaussian(g.OutChannels * g.PatchSize, 32, 0.3f);
        var b = TestData.Gaussian(g.OutChannels, 33);
        var r = TestData.Gaussian(batch * g.OutChannels * oh * ow, 34);
        double Loss()
        {
            var y = new float[r.Length];
            ReferenceConv2d.Forward(x, w, b, y, g, batch, height, width);
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += (double)r[i] * y[i];
            return s;
        }
        var dw = new float[w.Length];
        var db = new float[b.Length];
        var dx = new float[x.Length];
        ReferenceConv2dBackward.Backward(x, w, r, dw, db, dx, g, batch, height, width);
        foreach (var (values, grad, name) in new[] { (x, dx, "dx"), (w, dw, "dW"), (b, db, "db") })
        {
            for (int i = 0; i < values.Length; i += Math.Max(1, values.Length / 40))
            {
                float keep = values[i];
                const float eps = 0.25f;
                values[i] = keep + eps;
                double up = Loss();
                values[i] = keep - eps;
                double down = Loss();
                values[i] = keep;
                double numeric = (up - down) / (2 * eps);
                Assert.True(Math.Abs(numeric - grad[i]) <= 1e-4 * Math.Max(1, Math.Abs(numeric)), $"{name}[{i}]: analytic {grad[i]}, numeric {numeric}");
            }
        }
    }

    [Fact]
    public void MaxPoolTakesTheFirstMaximumAndRoutesGradientsThere()
    {
        // One 4x4 plane; window (0,0) has a tie between its first two pixels.
        float[] x =
        [
            5, 5, 0, 1,
            2, 3, 4, -1,
            -3, -2, 7, 7,
            -1, -4, 7, 8,
        ];
        var y = new float[4];
        var argmax = new int[4];
        MaxPool2x2.Forward(x, y, argmax, 1, 4, 4);
        Assert.Equal([5f, 4f, -1f, 8f], y);
        Assert.Equal([0, 6, 12, 15], argmax);
        var dx = Enumerable.Repeat(float.NaN, 16).ToArray();
        MaxPool2x2.Backward([1f, 2f, 3f, 4f], argmax, dx, 1, 4, 4);
        var expected = new float[16];
        expected[0] = 1; expected[6] = 2; expected[12] = 3; expected[15] = 4;
        Assert.Equal(expected, dx);
    }

    [Fact]
    public void MaxPoolMatchesBruteForceOnManyPlanes()
    {
        int planes = 6, h = 6, w = 8;
        var x = TestData.Gaussian(planes * h * w, 41);
        var y = new float[planes * 12];
        var argmax = new int[planes * 12];
        MaxPool2x2.Forward(x, y, argmax, planes, h, w);
        for (int p = 0; p < planes; p++)
        for (int oy = 0; oy < 3; oy++)
        for (int ox = 0; ox < 4; ox++)
        {
            float m = float.NegativeInfinity;
            for (int dy = 0; dy < 2; dy++)
            for (int dxx = 0; dxx < 2; dxx++)
                m = Math.Max(m, x[p * h * w + (2 * oy + dy) * w + 2 * ox + dxx]);
            int o = p * 12 + oy * 4 + ox;
            Assert.Equal(m, y[o]);
            Assert.Equal(m, x[p * h * w + argmax[o]]);
        }
    }

    [Fact]
    public void ReluPassesGradientsOnlyWherePositive()
    {
        float[] x = [-2, -0f, 0.5f, 3, -1e-9f];
        var y = new float[5];
        Relu.Forward(x, y);
        Assert.Equal([0f, 0f, 0.5f, 3f, 0f], y);
        var dx = new float[5];
        Relu.Backward(y, [1f, 2f, 3f, 4f, 5f], dx);
        Assert.Equal([0f, 0f, 3f, 4f, 0f], dx);
    }

    [Fact]
    public void CrossEntropyIsTheMeanNegativeLogSoftmaxAndItsGradient()
    {
        int classes = 4;
        float[] logits = [1, 2, 3, 4, 100, 0, -100, 50, 0, 0, 0, 0];
        int[] labels = [3, 1, 2];
        var d = new float[12];
        double loss = SoftmaxCrossEntropy.ForwardBackward(logits, labels, classes, d);
        // By hand: row 0: log(e^1+e^2+e^3+e^4) - 4; row 1: 100 + log(1 + e^-100 + e^-200 + e^-50) - 0 ~ 100; row 2: log 4.
        double row0 = Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3) + Math.Exp(4)) - 4;
        double expected = (row0 + 100 + Math.Log(4)) / 3;
        Assert.Equal(expected, loss, 1e-9);
        // Finite differences in float64 of the same loss.
        for (int i = 0; i < logits.Length; i++)
        {
            float keep = logits[i];
            const float eps = 1e-2f;
            logits[i] = keep + eps;
            double up = SoftmaxCrossEntropy.ForwardBackward(logits, labels, classes, Span<float>.Empty);
            logits[i] = keep - eps;
            double down = SoftmaxCrossEntropy.ForwardBackward(logits, labels, classes, Span<float>.Empty);
            logits[i] = keep;
            Assert.True(Math.Abs((up - down) / (2 * eps) - d[i]) < 1e-4, $"d[{i}] = {d[i]}, numeric {(up - down) / (2 * eps)}");
        }
    }
}
