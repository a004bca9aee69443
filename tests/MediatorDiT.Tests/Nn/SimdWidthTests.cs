using System.Runtime.Intrinsics;
using MediatorDiT.Nn;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Tests.Nn;

/// <summary>
/// The kernels written once over <see cref="ISimd{TV}"/>, run at every vector width this machine accelerates
/// (128 bits always on x86 and ARM64, 256 with AVX2, 512 with AVX-512) in one process, against their plain
/// twins; element-wise kernels must give the same bits at every width (the same IEEE operations lane by lane).
/// </summary>
public class SimdWidthTests
{
    /// <summary>The widths this machine accelerates.</summary>
    public static TheoryData<int> Widths()
    {
        var data = new TheoryData<int>();
        if (Vector128.IsHardwareAccelerated) data.Add(128);
        if (Vector256.IsHardwareAccelerated) data.Add(256);
        if (Vector512.IsHardwareAccelerated) data.Add(512);
        return data;
    }

    internal static IEnumerable<SimdWidth> Accelerated()
    {
        if (Vector128.IsHardwareAccelerated) yield return SimdWidth.W128;
        if (Vector256.IsHardwareAccelerated) yield return SimdWidth.W256;
        if (Vector512.IsHardwareAccelerated) yield return SimdWidth.W512;
    }

    [Fact]
    public void WidestFollowsTheRuntime()
    {
        var expected = Vector512.IsHardwareAccelerated ? SimdWidth.W512 : Vector256.IsHardwareAccelerated ? SimdWidth.W256 : SimdWidth.W128;
        Assert.Equal(expected, Simd.Widest);
        // Rows shorter than a 512-bit vector take 256-bit ones; otherwise the widest.
        Assert.Equal(Vector512.IsHardwareAccelerated ? SimdWidth.W256 : expected, Simd.ForRow(9));
        Assert.Equal(expected, Simd.ForRow(16));
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void GeluMatchesReferenceAndIsTheSameAtEveryWidth(int bits)
    {
        var width = (SimdWidth)bits;
        var x = TestData.Gaussian(1003, 5, 4f);
        x[0] = 50f;
        x[1] = -50f;
        x[2] = 0f;
        var y = new float[x.Length];
        var yr = new float[x.Length];
        Gelu.Forward(x, y, width);
        ReferenceGelu.Forward(x, yr);
        TestData.AssertClose(yr, y, 1e-6f, $"gelu {bits}");
        var dy = TestData.Gaussian(x.Length, 6);
        var dx = new float[x.Length];
        var dxr = new float[x.Length];
        Gelu.Backward(x, dy, dx, width);
        ReferenceGelu.Backward(x, dy, dxr);
        TestData.AssertClose(dxr, dx, 1e-5f, $"gelu backward {bits}");

        var y0 = new float[x.Length];
        var dx0 = new float[x.Length];
        Gelu.Forward(x, y0, SimdWidth.W128);
        Gelu.Backward(x, dy, dx0, SimdWidth.W128);
        Assert.Equal(y0, y);
        Assert.Equal(dx0, dx);
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void SoftmaxRowsMatchReferenceAtEveryWidth(int bits)
    {
        var width = (SimdWidth)bits;
        foreach (int cols in new[] { 1, 3, 4, 7, 9, 16, 37, 64, 256 })
        {
            var x = TestData.Gaussian(cols, 21, 4f);
            var bias = TestData.Gaussian(cols, 22, 2f);
            x[cols / 2] = 500f; // exp would overflow without the max subtraction
            foreach (bool withBias in new[] { false, true })
            {
                string what = $"{bits}-bit softmax cols {cols} bias {withBias}";
                var fast = (float[])x.Clone();
                var slow = (float[])x.Clone();
                var b = withBias ? bias : [];
                float lseFast = SoftmaxRows.Forward(fast, b, width);
                float lseSlow = ReferenceSoftmaxRows.Forward(slow, b);
                TestData.AssertClose(slow, fast, 1e-6f, what);
                Assert.Equal(lseSlow, lseFast, 1e-4f * Math.Max(1f, Math.Abs(lseSlow)));

                var logits = (float[])x.Clone();
                for (int i = 0; i < cols; i++) logits[i] += withBias ? bias[i] : 0;
                SoftmaxRows.ExpShifted(logits, lseFast, width);
                TestData.AssertClose(slow, logits, 1e-5f, $"{what}: exp(logit - lse)");

                foreach (float delta in new[] { float.NaN, 0.25f })
                {
                    var dFast = TestData.Gaussian(cols, 23);
                    var dSlow = (float[])dFast.Clone();
                    SoftmaxRows.Backward(fast, dFast, delta, width);
                    ReferenceSoftmaxRows.Backward(slow, dSlow, delta);
                    TestData.AssertClose(dSlow, dFast, 1e-5f, $"{what}: backward, delta {delta}");
                }
            }
        }
    }

    [Theory]
    [InlineData(1, 1, 3, 3)]
    [InlineData(4, 5, 37, 37)]
    [InlineData(6, 3, 16, 48)]
    public void DepthwiseConvMatchesReferenceAndIsTheSameAtEveryWidth(int h, int w, int c, int stride)
    {
        var x = TestData.Gaussian((h * w - 1) * stride + c, 31);
        var taps = TestData.Gaussian(9 * c, 32);
        var bias = TestData.Gaussian(c, 33);
        var start = TestData.Gaussian(h * w * c, 34);
        var g = TestData.Gaussian(h * w * c, 35);
        var dx0 = TestData.Gaussian(x.Length, 36);
        float[][]? first = null;
        foreach (var width in Accelerated())
        {
            var y = (float[])start.Clone();
            var yr = (float[])start.Clone();
            DepthwiseConv3x3.Forward(x, stride, taps, c, bias, y, c, h, w, c, accumulate: true, width);
            ReferenceDepthwiseConv3x3.Forward(x, stride, taps, bias, yr, h, w, c, accumulate: true);
            TestData.AssertClose(yr, y, 1e-5f, $"{width} dwc forward");
            var (dx, dt, db) = ((float[])dx0.Clone(), new float[9 * c], new float[c]);
            var (dxr, dtr, dbr) = ((float[])dx0.Clone(), new float[9 * c], new float[c]);
            DepthwiseConv3x3.BackwardAccumulate(x, stride, taps, c, g, c, dx, dt, db, h, w, c, width);
            ReferenceDepthwiseConv3x3.BackwardAccumulate(x, stride, taps, g, dxr, dtr, dbr, h, w, c);
            TestData.AssertClose(dxr, dx, 1e-5f, $"{width} dwc dx");
            TestData.AssertClose(dtr, dt, 1e-5f, $"{width} dwc dtaps");
            TestData.AssertClose(dbr, db, 1e-5f, $"{width} dwc dbias");
            float[][] all = [y, dx, dt, db];
            first ??= all;
            for (int i = 0; i < all.Length; i++) Assert.Equal(first[i], all[i]);
        }
    }

    [Theory]
    [InlineData(7)]
    [InlineData(40)]
    [InlineData(384)]
    public void AdaLayerNormRowsMatchReferenceAtEveryWidth(int d)
    {
        var x = TestData.Gaussian(d, 51, 3f);
        for (int i = 0; i < d; i++) x[i] += 50f; // a large mean must not cost precision
        var shift = TestData.Gaussian(d, 52);
        var scale = TestData.Gaussian(d, 53);
        var (hr, yr) = (new float[d], new float[d]);
        var (meanR, rstdR) = ReferenceAdaLayerNormKernel.ForwardRow(x, shift, scale, hr, yr);
        var g = TestData.Gaussian(d, 54);
        var dShift0 = TestData.Gaussian(d, 55);
        var dScale0 = TestData.Gaussian(d, 56);
        var (dShiftR, dScaleR, dxhatR) = ((float[])dShift0.Clone(), (float[])dScale0.Clone(), new float[d]);
        ReferenceAdaLayerNormKernel.ModulationBackwardRow(g, hr, scale, dShiftR, dScaleR, dxhatR);
        // The three vector-library calls the backward row replaced, whose bits it keeps.
        var (dShiftT, dScaleT, dxhatT) = ((float[])dShift0.Clone(), (float[])dScale0.Clone(), new float[d]);
        TensorPrimitives.Add(dShiftT, g, dShiftT);
        TensorPrimitives.MultiplyAdd(g, hr, dScaleT, dScaleT);
        TensorPrimitives.MultiplyAdd(g, scale, g, dxhatT);
        foreach (var width in Accelerated())
        {
            var (h, y) = (new float[d], new float[d]);
            var (mean, rstd) = AdaLayerNormKernel.ForwardRow(x, shift, scale, h, y, LayerNorm.DefaultEps, width);
            TestData.AssertClose(hr, h, 1e-5f, $"{width} xhat");
            TestData.AssertClose(yr, y, 1e-5f, $"{width} y");
            Assert.Equal(meanR, mean, 1e-5f * Math.Abs(meanR));
            Assert.Equal(rstdR, rstd, 1e-5f * rstdR);

            var (dShift, dScale, dxhat) = ((float[])dShift0.Clone(), (float[])dScale0.Clone(), new float[d]);
            AdaLayerNormKernel.ModulationBackwardRow(g, hr, scale, dShift, dScale, dxhat, width);
            TestData.AssertClose(dShiftR, dShift, 1e-6f, $"{width} dShift");
            TestData.AssertClose(dScaleR, dScale, 1e-6f, $"{width} dScale");
            TestData.AssertClose(dxhatR, dxhat, 1e-6f, $"{width} dxhat");
            Assert.Equal(dShiftT, dShift);
            Assert.Equal(dScaleT, dScale);
            Assert.Equal(dxhatT, dxhat);
        }
    }

    [Theory]
    [InlineData(7, false)]
    [InlineData(40, true)]
    [InlineData(96, false)]
    [InlineData(96, true)]
    [InlineData(384, true)]
    public void AdaLayerNormBackwardRowMatchesReferenceAndTheUnfusedCalls(int d, bool accumulate)
    {
        var x = TestData.Gaussian(d, 71, 3f);
        for (int i = 0; i < d; i++) x[i] += 50f;
        var shift = TestData.Gaussian(d, 72);
        var scale = TestData.Gaussian(d, 73);
        var (xhat, y) = (new float[d], new float[d]);
        var (mean, rstd) = AdaLayerNormKernel.ForwardRow(x, shift, scale, xhat, y);
        var g = TestData.Gaussian(d, 74);
        var dShift0 = TestData.Gaussian(d, 75);
        var dScale0 = TestData.Gaussian(d, 76);
        var dx0 = TestData.Gaussian(d, 77);
        var (dShiftR, dScaleR, dxR) = ((float[])dShift0.Clone(), (float[])dScale0.Clone(), (float[])dx0.Clone());
        ReferenceAdaLayerNormKernel.BackwardRow(g, xhat, scale, rstd, dShiftR, dScaleR, dxR, accumulate);
        // The calls the fused row replaced: the modulation's row, LayerNorm's backward (xhat recomputed from x), the add.
        var (dShiftU, dScaleU, dxhatU, lnU, dxU) = ((float[])dShift0.Clone(), (float[])dScale0.Clone(), new float[d], new float[d], (float[])dx0.Clone());
        AdaLayerNormKernel.ModulationBackwardRow(g, xhat, scale, dShiftU, dScaleU, dxhatU);
        LayerNorm.Backward(x, [mean], [rstd], dxhatU, accumulate ? lnU : dxU, new float[d], 1, d);
        if (accumulate) TensorPrimitives.Add(dxU, lnU, dxU);
        foreach (var width in Accelerated())
        {
            var (dShift, dScale, dx) = ((float[])dShift0.Clone(), (float[])dScale0.Clone(), (float[])dx0.Clone());
            AdaLayerNormKernel.BackwardRow(g, xhat, scale, rstd, dShift, dScale, new float[d], dx, accumulate, width);
            TestData.AssertClose(dShiftR, dShift, 1e-6f, $"{width} dShift");
            TestData.AssertClose(dScaleR, dScale, 1e-6f, $"{width} dScale");
            TestData.AssertClose(dxR, dx, 1e-5f, $"{width} dx");
            // The modulation's gradients are the same element-wise operations: the same bits as before.
            Assert.Equal(dShiftU, dShift);
            Assert.Equal(dScaleU, dScale);
            TestData.AssertClose(dxU, dx, 1e-5f, $"{width} dx vs the unfused calls");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AdamWUpdateEqualsTheScalarLoopAtEveryWidth(bool decays)
    {
        const int n = 1003;
        var p0 = TestData.Gaussian(n, 61);
        var g = TestData.Gaussian(n, 62, 1e-2f);
        g[5] = 0f;
        var m0 = TestData.Gaussian(n, 63, 1e-3f);
        var v0 = TestData.Gaussian(n, 64, 1e-3f).Select(Math.Abs).ToArray();
        var s = new AdamWScalars(1f - 1e-4f * 0.05f, decays, 0.9f, 0.999f, 0.1f, 0.001f, (float)Math.Sqrt(1 - Math.Pow(0.999, 3)), 1e-8f,
            (float)(1e-4 / (1 - Math.Pow(0.9, 3))));
        var (pr, mr, vr) = ((float[])p0.Clone(), (float[])m0.Clone(), (float[])v0.Clone());
        ReferenceAdamWKernel.Update(pr, g, mr, vr, s);
        foreach (var width in Accelerated())
        {
            var (p, m, v) = ((float[])p0.Clone(), (float[])m0.Clone(), (float[])v0.Clone());
            AdamWKernel.Update(p, g, m, v, s, width);
            Assert.Equal(pr, p);
            Assert.Equal(mr, m);
            Assert.Equal(vr, v);
        }
        Assert.NotEqual(p0, pr);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(40)]
    [InlineData(389)]
    public void GatedResidualEqualsTheScalarLoopAndTheVectorLibraryAtEveryWidth(int d)
    {
        var src = TestData.Gaussian(d, 71);
        var branch = TestData.Gaussian(d, 72);
        var gate = TestData.Gaussian(d, 73);
        var dy = TestData.Gaussian(d, 74);
        var dGate0 = TestData.Gaussian(d, 75);
        var yr = new float[d];
        ReferenceGatedResidual.Forward(src, branch, gate, yr);
        var (dGateR, dBranchR) = ((float[])dGate0.Clone(), new float[d]);
        ReferenceGatedResidual.Backward(dy, branch, gate, dGateR, dBranchR);
        // The vector-library calls SiTBlock made before: the same bits.
        var yt = new float[d];
        TensorPrimitives.MultiplyAdd(branch, gate, src, yt);
        var (dGateT, dBranchT) = ((float[])dGate0.Clone(), new float[d]);
        TensorPrimitives.MultiplyAdd(dy, branch, dGateT, dGateT);
        TensorPrimitives.Multiply(dy, gate, dBranchT);
        Assert.Equal(yt, yr);
        Assert.Equal(dGateT, dGateR);
        Assert.Equal(dBranchT, dBranchR);
        foreach (var width in Accelerated())
        {
            var y = new float[d];
            GatedResidual.Forward(src, branch, gate, y, width);
            Assert.Equal(yr, y);
            var inPlace = (float[])src.Clone();
            GatedResidual.Forward(inPlace, branch, gate, inPlace, width);
            Assert.Equal(yr, inPlace);
            var (dGate, dBranch) = ((float[])dGate0.Clone(), new float[d]);
            GatedResidual.Backward(dy, branch, gate, dGate, dBranch, width);
            Assert.Equal(dGateR, dGate);
            Assert.Equal(dBranchR, dBranch);
        }
    }

    [Fact]
    public void GuidanceCombinationEqualsTheScalarLoopAtEveryWidth()
    {
        var cond = TestData.Gaussian(1027, 81);
        var uncond = TestData.Gaussian(1027, 82);
        var (cr, ur) = ((float[])cond.Clone(), (float[])uncond.Clone());
        ReferenceGuidanceKernel.Combine(cr, ur, 4f);
        Assert.Equal(cr, ur);
        foreach (var width in Accelerated())
        {
            var (c, u) = ((float[])cond.Clone(), (float[])uncond.Clone());
            GuidanceKernel.Combine(c, u, 4f, width);
            Assert.Equal(cr, c);
            Assert.Equal(ur, u);
        }
    }

    [Theory]
    [InlineData(2, 1, 4)]
    [InlineData(3, 4, 5)]
    [InlineData(2, 9, 7)]
    [InlineData(1, 16, 8)]
    public void MediatorBiasKernelsEqualThePlainLoopsAtEveryWidth(int heads, int n, int grid)
    {
        int N = grid * grid;
        var maps1 = TestData.Gaussian(heads * n * N, 91);
        var ah = TestData.Gaussian(heads * n * grid, 92);
        var aw = TestData.Gaussian(heads * n * grid, 93);
        var maps2 = TestData.Gaussian(heads * N * n, 94);
        var ha = TestData.Gaussian(heads * grid * n, 95);
        var wa = TestData.Gaussian(heads * grid * n, 96);
        var r1 = (float[])maps1.Clone();
        ReferenceMediatorBiases.AddAxisBiases(r1, ah, aw, heads * n, grid, grid);
        var r2 = (float[])maps2.Clone();
        ReferenceMediatorBiases.AddAxisBiasesPerMediator(r2, ha, wa, heads, grid, grid, n);
        var (dah, daw) = (TestData.Gaussian(ah.Length, 97), TestData.Gaussian(aw.Length, 98));
        var (dahR, dawR) = ((float[])dah.Clone(), (float[])daw.Clone());
        ReferenceMediatorBiases.AxisBiasGradients(maps1, dahR, dawR, heads * n, grid, grid);
        var (dha, dwa) = (TestData.Gaussian(ha.Length, 99), TestData.Gaussian(wa.Length, 100));
        var (dhaR, dwaR) = ((float[])dha.Clone(), (float[])dwa.Clone());
        ReferenceMediatorBiases.AxisBiasGradientsPerMediator(maps2, dhaR, dwaR, heads, grid, grid, n);
        foreach (var width in Accelerated())
        {
            var m1 = (float[])maps1.Clone();
            MediatorBiases.AddAxisBiases(m1, ah, aw, heads * n, grid, grid, width);
            Assert.Equal(r1, m1);
            var m2 = (float[])maps2.Clone();
            MediatorBiases.AddAxisBiasesPerMediator(m2, ha, wa, heads, grid, grid, n, width);
            Assert.Equal(r2, m2);
            var (g1, g2) = ((float[])dah.Clone(), (float[])daw.Clone());
            MediatorBiases.AxisBiasGradients(maps1, g1, g2, heads * n, grid, grid, width);
            Assert.Equal(dahR, g1);
            Assert.Equal(dawR, g2);
            var (g3, g4) = ((float[])dha.Clone(), (float[])dwa.Clone());
            MediatorBiases.AxisBiasGradientsPerMediator(maps2, g3, g4, heads, grid, grid, n, width);
            Assert.Equal(dhaR, g3);
            Assert.Equal(dwaR, g4);
        }
        var t = new float[maps1.Length];
        var tr = new float[maps1.Length];
        MediatorBiases.Transpose(maps1, t, heads, n, N);
        ReferenceMediatorBiases.Transpose(maps1, tr, heads, n, N);
        Assert.Equal(tr, t);
    }

    [Fact]
    public void DepthwiseWeightGradientIsTheTransposeOfTheTapLayout()
    {
        const int c = 11;
        var weight = TestData.Gaussian(9 * c, 101);
        var taps = new float[9 * c];
        DepthwiseConv3x3.TransposeWeight(weight, taps, c);
        var dWeight = TestData.Gaussian(9 * c, 102);
        var expected = dWeight.Zip(weight, (a, b) => a + b).ToArray();
        DepthwiseConv3x3.AccumulateWeightGradient(taps, dWeight, c);
        Assert.Equal(expected, dWeight);
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void TransposeScaledMovesEachScaledLaneToItsRow(int bits)
    {
        // dst[m * ds + i] = scale[m] * src[i * ss + m], bit for bit (one multiply, then moves), with row strides wider
        // than a vector so a stray lane would land in a gap that must stay NaN.
        switch ((SimdWidth)bits)
        {
            case SimdWidth.W512: CheckTranspose<W512, Vector512<float>>(); break;
            case SimdWidth.W256: CheckTranspose<W256, Vector256<float>>(); break;
            default: CheckTranspose<W128, Vector128<float>>(); break;
        }
    }

    private static void CheckTranspose<TW, TV>() where TW : struct, ISimd<TV> where TV : struct
    {
        if (!TW.CanTranspose) return;
        int w = TW.Count, ss = w + 3, ds = w + 5;
        var src = TestData.Gaussian(w * ss, 41);
        var scale = TestData.Gaussian(w, 42);
        var dst = Enumerable.Repeat(float.NaN, w * ds).ToArray();
        TW.TransposeScaled(ref src[0], ss, TW.Load(ref scale[0]), ref dst[0], ds);
        for (int m = 0; m < w; m++)
        for (int i = 0; i < ds; i++)
        {
            if (i < w) Assert.Equal(scale[m] * src[i * ss + m], dst[m * ds + i]);
            else Assert.True(float.IsNaN(dst[m * ds + i]), $"gap ({m}, {i}) written");
        }
    }
}
