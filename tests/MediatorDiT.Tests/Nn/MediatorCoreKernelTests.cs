using System.Runtime.Intrinsics;
using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Nn;

/// <summary>
/// The fused mediator-attention core against its plain twin (pool, four GEMMs, per-row softmax, depthwise conv)
/// on one head, for mediator counts that fill a vector, leave a tail or span several vectors, grids whose token
/// count is not a multiple of 8 or 16, and head sizes with a vector tail or below one vector; at every vector width
/// this machine accelerates.
/// </summary>
public class MediatorCoreKernelTests
{
    private sealed record Case(float[] Q, float[] K, float[] V, int XStride, float[] Bias1T, float[] Bias2, float[] Taps, int TapStride,
        float[] DwcBias, int TokenStride, int OStride, int GridH, int GridW, int MedGrid, int Hd, float Scale);

    private sealed record Result(float[] Tokens, float[] A1, float[] A2, float[] Vm, float[] O);

    // Strides wider than a row, as inside the qkv / output buffers, and odd so no row starts vector-aligned.
    private static Case MakeCase(int medGrid, int gridH, int gridW, int hd)
    {
        int N = gridH * gridW, n = medGrid * medGrid, xs = 3 * hd + 5, ts = hd + 3;
        float[] Rows(ulong seed) => TestData.Gaussian((N - 1) * xs + hd, seed);
        return new Case(Rows(1), Rows(2), Rows(3), xs, TestData.Gaussian(n * N, 4), TestData.Gaussian(N * n, 5),
            TestData.Gaussian(8 * ts + hd, 6, 0.3f), ts, TestData.Gaussian(hd, 7), hd + 1, hd + 7, gridH, gridW, medGrid, hd,
            1f / MathF.Sqrt(hd));
    }

    private static Result Run(Case c, Action<Case, Result> kernel)
    {
        int N = c.GridH * c.GridW, n = c.MedGrid * c.MedGrid;
        // Outputs start as NaN: the kernel must overwrite every element it owns and leave the stride gaps alone.
        float[] Filled(int length) => Enumerable.Repeat(float.NaN, length).ToArray();
        var r = new Result(Filled((n - 1) * c.TokenStride + c.Hd), Filled(n * N), Filled(N * n), Filled(n * c.Hd),
            Filled((N - 1) * c.OStride + c.Hd));
        kernel(c, r);
        return r;
    }

    private static Result Fused(Case c, SimdWidth width) => Run(c, (c, r) => MediatorCoreKernel.Forward(c.Q, c.K, c.V, c.XStride,
        c.Bias1T, c.Bias2, c.Taps, c.TapStride, c.DwcBias, r.Tokens, c.TokenStride, r.A1, r.A2, r.Vm, r.O, c.OStride,
        c.GridH, c.GridW, c.MedGrid, c.Hd, c.Scale, width));

    private static Result Reference(Case c) => Run(c, (c, r) => ReferenceMediatorCore.Forward(c.Q, c.K, c.V, c.XStride,
        c.Bias1T, c.Bias2, c.Taps, c.TapStride, c.DwcBias, r.Tokens, c.TokenStride, r.A1, r.A2, r.Vm, r.O, c.OStride,
        c.GridH, c.GridW, c.MedGrid, c.Hd, c.Scale));

    /// <summary>The row elements of a strided buffer; asserts the gaps between rows are still NaN.</summary>
    private static float[] Rows(float[] buffer, int rows, int stride, int width, string what)
    {
        var packed = new float[rows * width];
        for (int r = 0; r < rows; r++)
        {
            buffer.AsSpan(r * stride, width).CopyTo(packed.AsSpan(r * width));
            if (r < rows - 1)
                Assert.True(buffer.AsSpan(r * stride + width, stride - width).ToArray().All(float.IsNaN), $"{what}: row gap {r} written");
        }
        return packed;
    }

    // Both forms sum the hd-long logits and the N- and n-long products in float32, in different orders (the GEMM
    // blocks k, the fused kernel runs it straight), so they differ by a few float roundings of the largest
    // values: ~1e-6 of max |value| here. 1e-5 of max |value| leaves room for that and still catches any
    // indexing, masking or tail error, which moves values by O(1).
    private const float Tolerance = 1e-5f;

    private static void AssertSame(Case c, Result expected, Result actual, string what)
    {
        int N = c.GridH * c.GridW, n = c.MedGrid * c.MedGrid;
        TestData.AssertClose(Rows(expected.Tokens, n, c.TokenStride, c.Hd, what), Rows(actual.Tokens, n, c.TokenStride, c.Hd, what),
            Tolerance, $"{what}: T");
        TestData.AssertClose(expected.A1, actual.A1, Tolerance, $"{what}: A1");
        TestData.AssertClose(expected.A2, actual.A2, Tolerance, $"{what}: A2");
        TestData.AssertClose(expected.Vm, actual.Vm, Tolerance, $"{what}: Vm");
        TestData.AssertClose(Rows(expected.O, N, c.OStride, c.Hd, what), Rows(actual.O, N, c.OStride, c.Hd, what), Tolerance, $"{what}: O");
    }

    [Theory]
    [InlineData(1, 16, 16, 64)]
    [InlineData(2, 9, 9, 32)]
    [InlineData(3, 5, 7, 72)]
    [InlineData(4, 16, 16, 64)]
    [InlineData(4, 5, 7, 32)]
    [InlineData(4, 9, 9, 72)]
    [InlineData(8, 16, 16, 64)]
    [InlineData(8, 9, 9, 72)]
    [InlineData(2, 2, 3, 16)]
    [InlineData(1, 1, 1, 8)]
    [InlineData(3, 7, 7, 8)]
    public void FusedCoreMatchesReference(int medGrid, int gridH, int gridW, int hd)
    {
        var c = MakeCase(medGrid, gridH, gridW, hd);
        var expected = Reference(c);
        foreach (var width in SimdWidthTests.Accelerated())
            AssertSame(c, expected, Fused(c, width), $"{width} n={medGrid * medGrid} {gridH}x{gridW} hd={hd}");
    }

    [Theory]
    [InlineData(3, 5, 7, 72)]
    [InlineData(4, 16, 16, 64)]
    [InlineData(8, 9, 9, 40)]
    public void NarrowerPathsMatchTheWidest(int medGrid, int gridH, int gridW, int hd)
    {
        var c = MakeCase(medGrid, gridH, gridW, hd);
        var widest = Fused(c, Simd.Widest);
        foreach (var width in SimdWidthTests.Accelerated().Where(w => w != Simd.Widest))
            AssertSame(c, widest, Fused(c, width), $"{width} n={medGrid * medGrid} {gridH}x{gridW} hd={hd}");
    }

    [Theory]
    [InlineData(9, 16)]
    [InlineData(7, 4)]
    public void WholeAttentionForwardIsIdenticalOnOneAndTwoThreads(int grid, int mediators)
    {
        // 3 images, 96 channels in 3 heads (hd = 32, the vector paths): 9 items over two threads.
        const int batch = 3, dim = 96, heads = 3;
        float[] Forward(int threads)
        {
            var saved = ComputeContext.Raw;
            ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
            try
            {
                var attn = new MediatorAttention("a.", dim, heads, grid, mediators);
                var rng = new RandomSource(51);
                foreach (var p in attn.Parameters) rng.FillGaussian(p.Value.Span, 0, 0.3f);
                var x = new Tensor(batch * grid * grid, dim);
                rng.FillGaussian(x.Span);
                var y = new Tensor(batch * grid * grid, dim);
                attn.Forward(x, y, batch);
                return y.Span.ToArray();
            }
            finally { ComputeContext.Raw = saved; }
        }
        var one = Forward(1);
        Assert.True(one.AsSpan().SequenceEqual(Forward(2)), "the forward differs between 1 and 2 threads");
        Assert.All(one, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void RowsOfProbabilitiesSumToOne()
    {
        // Independent of the reference: every A1 and A2 row is a distribution, also with a masked tail (n = 9).
        var c = MakeCase(3, 5, 7, 72);
        foreach (var width in SimdWidthTests.Accelerated())
        {
            var r = Fused(c, width);
            int N = 35, n = 9;
            for (int m = 0; m < n; m++) Assert.Equal(1f, r.A1.AsSpan(m * N, N).ToArray().Sum(), 1e-5f);
            for (int i = 0; i < N; i++) Assert.Equal(1f, r.A2.AsSpan(i * n, n).ToArray().Sum(), 1e-5f);
            Assert.All(r.A2, p => Assert.InRange(p, 0f, 1f));
        }
    }

    private sealed record Gradients(float[] Dq, float[] Dk, float[] Dv, float[] DS1, float[] DS2, float[] DTaps, float[] DBias);

    /// <summary>
    /// The backward pass of case <paramref name="c"/> from the reference forward's T, A1, A2, Vm and a random dO (rows
    /// wider than hd). dq, dk, dv start as NaN (every row element must be overwritten, the gaps left alone); the tap
    /// and bias gradients start at random values (they are added to), or at zero.
    /// </summary>
    private static Gradients RunBackward(Case c, Result forward, SimdWidth? width, bool zeroTapGradients = false)
    {
        int N = c.GridH * c.GridW, n = c.MedGrid * c.MedGrid, dOs = c.Hd + 9;
        var dO = TestData.Gaussian((N - 1) * dOs + c.Hd, 11);
        float[] Filled(int length) => Enumerable.Repeat(float.NaN, length).ToArray();
        var g = new Gradients(Filled(c.Q.Length), Filled(c.K.Length), Filled(c.V.Length), Filled(n * N), Filled(N * n),
            zeroTapGradients ? new float[c.Taps.Length] : TestData.Gaussian(c.Taps.Length, 12),
            zeroTapGradients ? new float[c.Hd] : TestData.Gaussian(c.Hd, 13));
        if (width is SimdWidth w)
            MediatorCoreKernel.Backward(c.Q, c.K, c.V, c.XStride, c.Taps, c.TapStride, forward.Tokens, c.TokenStride, forward.A1,
                forward.A2, forward.Vm, dO, dOs, g.Dq, g.Dk, g.Dv, g.DS1, g.DS2, g.DTaps, g.DBias, c.GridH, c.GridW, c.MedGrid, c.Hd,
                c.Scale, w);
        else
            ReferenceMediatorCore.Backward(c.Q, c.K, c.V, c.XStride, c.Taps, c.TapStride, forward.Tokens, c.TokenStride, forward.A1,
                forward.A2, forward.Vm, dO, dOs, g.Dq, g.Dk, g.Dv, g.DS1, g.DS2, g.DTaps, g.DBias, c.GridH, c.GridW, c.MedGrid, c.Hd,
                c.Scale);
        return g;
    }

    // As for the forward, the two forms add the same terms in other orders (the GEMMs block their sums, the fused
    // kernel runs them straight; the conv's input gradient gathers where the reference scatters), so they differ by
    // a few float roundings of the largest terms. The softmax backward subtracts the row's mean gradient, which
    // cancels part of each value, so a gradient may sit further below the largest terms than a forward value:
    // 1e-5 of max |value| (the forward's bound) still holds here, and an indexing, masking or tail error moves
    // values by O(1).
    private const float BackwardTolerance = 1e-5f;

    private static void AssertSameGradients(Case c, Gradients expected, Gradients actual, string what)
    {
        int N = c.GridH * c.GridW;
        TestData.AssertClose(Rows(expected.Dq, N, c.XStride, c.Hd, what), Rows(actual.Dq, N, c.XStride, c.Hd, what), BackwardTolerance, $"{what}: dq");
        TestData.AssertClose(Rows(expected.Dk, N, c.XStride, c.Hd, what), Rows(actual.Dk, N, c.XStride, c.Hd, what), BackwardTolerance, $"{what}: dk");
        TestData.AssertClose(Rows(expected.Dv, N, c.XStride, c.Hd, what), Rows(actual.Dv, N, c.XStride, c.Hd, what), BackwardTolerance, $"{what}: dv");
        TestData.AssertClose(expected.DS1, actual.DS1, BackwardTolerance, $"{what}: dS1");
        TestData.AssertClose(expected.DS2, actual.DS2, BackwardTolerance, $"{what}: dS2");
        TestData.AssertClose(expected.DTaps, actual.DTaps, BackwardTolerance, $"{what}: dTaps");
        TestData.AssertClose(expected.DBias, actual.DBias, BackwardTolerance, $"{what}: dBias");
    }

    [Theory]
    [InlineData(1, 16, 16, 64)]
    [InlineData(2, 9, 9, 32)]
    [InlineData(3, 5, 7, 72)]
    [InlineData(4, 16, 16, 64)]
    [InlineData(4, 5, 7, 32)]
    [InlineData(4, 9, 9, 72)]
    [InlineData(8, 16, 16, 64)]
    [InlineData(8, 9, 9, 72)]
    [InlineData(2, 2, 3, 16)]
    [InlineData(1, 1, 1, 8)]
    [InlineData(3, 7, 7, 8)]
    [InlineData(2, 4, 4, 4)]
    [InlineData(2, 16, 16, 24)]
    [InlineData(4, 16, 16, 24)]
    [InlineData(8, 16, 16, 24)]
    public void FusedBackwardMatchesReference(int medGrid, int gridH, int gridW, int hd)
    {
        var c = MakeCase(medGrid, gridH, gridW, hd);
        var forward = Reference(c);
        var expected = RunBackward(c, forward, null);
        foreach (var width in SimdWidthTests.Accelerated())
            AssertSameGradients(c, expected, RunBackward(c, forward, width), $"{width} n={medGrid * medGrid} {gridH}x{gridW} hd={hd}");
    }

    [Fact]
    public void BackwardTapGradientsMatchTheReferenceBitForBit()
    {
        // From zero, the tap and bias sums add the same terms in the same token order as the reference's conv
        // backward (an out-of-grid neighbour adds 0 * dO, exactly nothing), so they agree exactly, not just within
        // the tolerance (as MediatorAttention uses them: each image's gradients start at zero).
        var c = MakeCase(4, 9, 9, 32);
        var forward = Reference(c);
        var expected = RunBackward(c, forward, null, zeroTapGradients: true);
        foreach (var width in SimdWidthTests.Accelerated())
        {
            var actual = RunBackward(c, forward, width, zeroTapGradients: true);
            Assert.True(expected.DTaps.AsSpan().SequenceEqual(actual.DTaps), $"{width}: dTaps differ");
            Assert.True(expected.DBias.AsSpan().SequenceEqual(actual.DBias), $"{width}: dBias differ");
        }
    }
}
