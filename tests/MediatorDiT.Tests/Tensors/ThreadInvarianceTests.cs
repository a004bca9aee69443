using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Tensors;

/// <summary>
/// Work that is cut into GEMM calls or partial sums gives the same bits on 1, 2 and 3 threads. OpenBLAS's
/// per-element sums depend on the shape of each call, so its products are cut by shape alone, and so are
/// the convolutions' bands and per-part weight gradients. The suite also runs once with MDIT_GEMM=openblas
/// (scripts/test.sh), where the convolutions below go through OpenBLAS.
/// </summary>
public class ThreadInvarianceTests
{
    public static TheoryData<bool, bool, int, int, int> Shapes => new()
    {
        { false, false, 1024, 96, 64 },  // tall: row blocks
        { false, true, 300, 200, 70 },   // tall with a tail block, B transposed
        { true, false, 48, 1536, 96 },   // wide: column blocks
        { true, true, 256, 256, 64 },
        { true, false, 384, 96, 8192 },  // a weight gradient over a long k: k parts
        { true, false, 96, 200, 6000 },  // k parts of unequal length, column-major split otherwise
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void OpenBlasProductsAreIdenticalOnAnyThreadCount(bool transA, bool transB, int m, int n, int k)
    {
        if (!Gemm.OpenBlasAvailable) return; // scripts/setup.sh installs it; without it there is nothing to split
        var a = TestData.Gaussian(m * k, 1);
        var b = TestData.Gaussian(k * n, 2);
        var c0 = TestData.Gaussian(m * n, 3);
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var c = (float[])c0.Clone();
            Gemm.Sgemm(GemmBackend.OpenBlas, threads, transA, transB, m, n, k, 0.7f, a, transA ? m : k, b, transB ? k : n, 0.5f, c, n);
            if (first is null) first = c;
            else Assert.True(first.AsSpan().SequenceEqual(c), $"{m}x{n}x{k} differs between 1 and {threads} threads");
        }
        var expected = (float[])c0.Clone();
        ReferenceGemm.Sgemm(transA, transB, m, n, k, 0.7f, a, transA ? m : k, b, transB ? k : n, 0.5f, expected, n);
        TestData.AssertClose(expected, first, 1e-4f, "OpenBLAS product against the reference");
    }

    [Fact]
    public void ConvolutionsAreIdenticalOnAnyThreadCount()
    {
        // 7 images (7 parts of the batched conv) and a 40-row image (bands of the large-image conv).
        var g = new Conv2dGeometry(6, 10, 3, 3, 1, 1, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1);
        const int batch = 7, h = 12, w = 9, bigH = 40, bigW = 33;
        var x = TestData.Gaussian(batch * g.InChannels * h * w, 4);
        var weight = TestData.Gaussian(g.OutChannels * g.PatchSize, 5, 0.3f);
        var bias = TestData.Gaussian(g.OutChannels, 6);
        var dy = TestData.Gaussian(batch * g.OutChannels * h * w, 7);
        var xBig = new Tensor(TestData.Gaussian(g.InChannels * bigH * bigW, 8), 1, g.InChannels, bigH, bigW);
        var results = new List<float[][]>();
        var saved = ComputeContext.Raw;
        try
        {
            foreach (int threads in new[] { 1, 2, 3 })
            {
                ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
                var y = new float[dy.Length];
                Conv2dBatch.Forward(x, weight, bias, y, g, batch, h, w, new Conv2dWorkspace());
                var dw = new float[weight.Length];
                var db = new float[bias.Length];
                var dx = new float[x.Length];
                Conv2dBatch.Backward(x, weight, dy, dw, db, dx, g, batch, h, w, new Conv2dWorkspace());
                var yBig = new Tensor(1, g.OutChannels, bigH, bigW);
                // Small bands (4 rows of 33 pixels) so the image is cut into many GEMM calls.
                Conv2d.Forward(xBig, new Tensor(weight, g.OutChannels, g.PatchSize), new Tensor(bias, g.OutChannels), yBig, g,
                    1, bigH, bigW, bandFloats: 4 * bigW * g.PatchSize);
                results.Add([y, dw, db, dx, yBig.Span.ToArray()]);
            }
        }
        finally { ComputeContext.Raw = saved; }
        string[] names = ["batched forward", "dW", "db", "dx", "large-image forward"];
        for (int t = 1; t < results.Count; t++)
        for (int i = 0; i < names.Length; i++)
            Assert.True(results[0][i].AsSpan().SequenceEqual(results[t][i]), $"{names[i]} differs between 1 and {t + 1} threads");
        var expected = new float[dy.Length];
        ReferenceConv2d.Forward(x, weight, bias, expected, g, batch, h, w);
        TestData.AssertClose(expected, results[0][0], 1e-4f, "batched forward against the reference");
    }
}
