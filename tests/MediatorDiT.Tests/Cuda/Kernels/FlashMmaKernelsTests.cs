using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The warp's tensor-core product (<see cref="WarpMma"/>) and full attention's fused forward and backward on it
/// (<see cref="FlashMmaKernels"/>), on 32-lane warps: the CPU accelerator shaped as a GPU (the instruction emulated by
/// shuffles) and, through scripts/gpu-tests.sh --kernels, a card (the instruction itself). The fragments are loaded
/// here from the PTX ISA's layout, written out independently of the library's, so the card holds the emulation to
/// the hardware. On the default CPU accelerator (4-lane warps) the kernel is refused with a sentence.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class FlashMmaKernelsTests(AcceleratorFixture device)
{
    /// <summary>One m16n8k16 product: a (16 x 16) and b (16 x 8) bf16 row-major, c (16 x 8) fp32 in and out.</summary>
    private static void MmaKernel(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<float> c)
    {
        int lane = Warp.LaneIdx, g = lane / 4, t = lane % 4;
        // A's register: two neighbouring columns of a row; B's: two neighbouring rows of a column (the lower index in the lower half).
        var fragment = new MmaOperandA { A0 = PairOfA(a, g, 2 * t), A1 = PairOfA(a, g + 8, 2 * t), A2 = PairOfA(a, g, 2 * t + 8), A3 = PairOfA(a, g + 8, 2 * t + 8) };
        var acc = new MmaAccumulator { C0 = c[g * 8 + 2 * t], C1 = c[g * 8 + 2 * t + 1], C2 = c[(g + 8) * 8 + 2 * t], C3 = c[(g + 8) * 8 + 2 * t + 1] };
        WarpMma.Bf16(ref acc, fragment, PairOfB(b, 2 * t, g), PairOfB(b, 2 * t + 8, g));
        Warp.Barrier();
        c[g * 8 + 2 * t] = acc.C0;
        c[g * 8 + 2 * t + 1] = acc.C1;
        c[(g + 8) * 8 + 2 * t] = acc.C2;
        c[(g + 8) * 8 + 2 * t + 1] = acc.C3;
    }

    private static uint PairOfA(ArrayView<ushort> a, int row, int col) => a[row * 16 + col] | ((uint)a[row * 16 + col + 1] << 16);
    private static uint PairOfB(ArrayView<ushort> b, int row, int col) => b[row * 8 + col] | ((uint)b[(row + 1) * 8 + col] << 16);

    [Fact]
    public void Mma_IsTheProductOfItsFragments_PlusTheAccumulator()
    {
        if (device.Accelerator.WarpSize != 32)
        {
            // The fragments' layout is a 32-lane warp's: the library must not run the fused kernel here.
            Assert.False(device.Kernels.FlashKernelsRun);
            return;
        }
        var a = KernelData.Uniform(16 * 16, 501).Select(Bf16.Round).ToArray();
        var b = KernelData.Uniform(16 * 8, 502).Select(Bf16.Round).ToArray();
        var c = KernelData.Uniform(16 * 8, 503, -10f, 10f);
        using var da = device.Accelerator.Allocate1D(a);
        using var db = device.Accelerator.Allocate1D(b);
        using var dc = device.Upload(c);
        device.Accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>>(MmaKernel)(new KernelConfig(1, 32), da.View, db.View, dc.View);
        var actual = device.Download(dc);
        for (int row = 0; row < 16; row++)
        for (int col = 0; col < 8; col++)
        {
            double sum = c[row * 8 + col], magnitude = Math.Abs(sum);
            for (int k = 0; k < 16; k++)
            {
                double term = (double)Bf16.Widen(a[row * 16 + k]) * Bf16.Widen(b[k * 8 + col]);
                sum += term;
                magnitude += Math.Abs(term);
            }
            // fp32 accumulation of 17 terms in some order: within 17 roundings of the terms' magnitude.
            Assert.True(Math.Abs(actual[row * 8 + col] - sum) <= 17 * 6e-8 * magnitude,
                $"C[{row}, {col}]: expected {sum:R}, got {actual[row * 8 + col]:R}");
        }
    }

    /// <summary>
    /// (items, tokens, head width): one short row block and key block; two of each, the last short, at SiT-XL's 72 channels
    /// (5 k-steps, the last half zeros, 9 channel tiles); the widest head (5 k-steps, 10 channel tiles); two full blocks
    /// at SiT-S's 64 channels (no key masked anywhere: the unmasked path alone).
    /// </summary>
    public static TheoryData<int, int, int> Shapes => new() { { 2, 9, 8 }, { 1, 80, 72 }, { 1, 20, 80 }, { 1, 128, 64 } };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FlashForward_IsSoftmaxAttentionOfTheBf16Inputs(int items, int tokens, int headDim)
    {
        int length = items * tokens * headDim;
        var q = KernelData.Uniform(length, 510, -2f, 2f).Select(Bf16.Round).ToArray();
        var k = KernelData.Uniform(length, 511, -2f, 2f).Select(Bf16.Round).ToArray();
        var v = KernelData.Uniform(length, 512, -3f, 3f).Select(Bf16.Round).ToArray();
        float scale = 1f / MathF.Sqrt(headDim);
        using var dq = device.Accelerator.Allocate1D(q);
        using var dk = device.Accelerator.Allocate1D(k);
        using var dv = device.Accelerator.Allocate1D(v);
        using var o = device.Upload(Enumerable.Repeat(float.NaN, length + 5).ToArray()); // 5 past the end stay NaN
        using var lse = device.Upload(Enumerable.Repeat(float.NaN, items * tokens + 5).ToArray());
        if (!device.Kernels.FlashKernelsRun)
        {
            var refused = Assert.Throws<ArgumentException>(() => device.Kernels.FlashForward(dq.View, dk.View, dv.View, o.View, lse.View, items, tokens, headDim, scale));
            Assert.Contains("warps of 32 lanes", refused.Message);
            return;
        }
        device.Kernels.FlashForward(dq.View, dk.View, dv.View, o.View, lse.View, items, tokens, headDim, scale);
        var actualO = device.Download(o);
        var actualLse = device.Download(lse);
        Assert.All(actualO[length..], x => Assert.True(float.IsNaN(x), "the kernel wrote past o"));
        Assert.All(actualLse[(items * tokens)..], x => Assert.True(float.IsNaN(x), "the kernel wrote past lse"));
        for (int item = 0; item < items; item++)
        for (int row = 0; row < tokens; row++)
        {
            var (expected, expectedLse) = Attention(q, k, v, item, row, tokens, headDim, scale);
            // lse from fp32 logits of bf16 inputs; o also from P rounded to bf16 (2^-9 relative) before P V.
            Assert.True(Math.Abs(actualLse[item * tokens + row] - expectedLse) <= 1e-4 * Math.Max(1, Math.Abs(expectedLse)),
                $"lse of item {item}, row {row}: expected {expectedLse:R}, got {actualLse[item * tokens + row]:R}");
            for (int c = 0; c < headDim; c++)
            {
                float got = actualO[(item * tokens + row) * headDim + c];
                Assert.True(Math.Abs(got - expected[c]) <= 3 * 3f / 512,
                    $"o of item {item}, row {row}, channel {c}: expected {expected[c]:R}, got {got:R}");
            }
        }
    }

    [Fact]
    public void FlashKernels_RefuseAnOddOrTooWideHead()
    {
        using var buffer = device.Accelerator.Allocate1D<ushort>(2 * 9 * 130);
        using var o = device.Accelerator.Allocate1D<float>(2 * 9 * 130);
        string expected = device.Kernels.FlashKernelsRun ? "even head width of at most 80" : "warps of 32 lanes";
        foreach (int headDim in new[] { 7, 82 })
        {
            Assert.Contains(expected, Assert.Throws<ArgumentException>(() =>
                device.Kernels.FlashForward(buffer.View, buffer.View, buffer.View, o.View, o.View, 2, 9, headDim, 1f)).Message);
            Assert.Contains(expected, Assert.Throws<ArgumentException>(() => device.Kernels.FlashBackward(buffer.View, buffer.View, buffer.View, buffer.View,
                o.View, o.View, o.View, o.View, o.View, 2, 9, headDim, 1f)).Message);
        }
    }

    [Fact]
    public void FlashForward_OnViewsNotAlignedTo8Bytes_TakesTheKernelForAnyWidth_WithTheSameBits()
    {
        // At 72 channels the kernel reads the tensors 8 bytes at a time (FlashHead72) where every view starts 8-byte
        // aligned; views 2 elements (4 bytes) into their buffers take AnyFlashHead's 2-byte reads instead. The same
        // arithmetic either way: the same bits.
        if (!device.Kernels.FlashKernelsRun) return; // refused on 4-lane warps (FlashForward_IsSoftmaxAttentionOfTheBf16Inputs)
        Assert.Equal(typeof(FlashHead72), FlashHeads.All[FlashHeads.IndexFor(72, aligned: true)]);
        Assert.Equal(typeof(AnyFlashHead), FlashHeads.All[FlashHeads.IndexFor(72, aligned: false)]);
        const int items = 1, tokens = 70, headDim = 72, length = items * tokens * headDim;
        float scale = 1f / MathF.Sqrt(headDim);
        ushort[] Data(int seed) => [0, 0, .. KernelData.Uniform(length, seed, -2f, 2f).Select(Bf16.Round)];
        using var dq = device.Accelerator.Allocate1D(Data(520));
        using var dk = device.Accelerator.Allocate1D(Data(521));
        using var dv = device.Accelerator.Allocate1D(Data(522));
        float[] Run(long offset)
        {
            using var o = device.Upload(new float[length]);
            using var lse = device.Upload(new float[items * tokens]);
            var q = dq.View.SubView(offset, length);
            var k = dk.View.SubView(offset, length);
            var v = dv.View.SubView(offset, length);
            Assert.Equal(offset % 4 == 0, FlashHeads.Aligned(q, k, v));
            device.Kernels.FlashForward(q, k, v, o.View, lse.View, items, tokens, headDim, scale);
            return [.. device.Download(o), .. device.Download(lse)];
        }
        // The aligned run needs the data at an 8-byte boundary: copy it there first.
        using var aq = device.Accelerator.Allocate1D(Data(520)[2..]);
        using var ak = device.Accelerator.Allocate1D(Data(521)[2..]);
        using var av = device.Accelerator.Allocate1D(Data(522)[2..]);
        using var ao = device.Upload(new float[length]);
        using var alse = device.Upload(new float[items * tokens]);
        Assert.True(FlashHeads.Aligned(aq.View, ak.View, av.View));
        device.Kernels.FlashForward(aq.View, ak.View, av.View, ao.View, alse.View, items, tokens, headDim, scale);
        float[] wide = [.. device.Download(ao), .. device.Download(alse)];
        const string what = "o and lse from 4-byte-aligned views against 8-byte-aligned ones";
        if (device.SameBitsAsCpu) KernelData.AssertSameBits(wide, Run(2), what);
        else GradientData.AssertClose(wide, Run(2), 1e-2, what); // on a card two kernels' contractions may move a P across a bf16 rounding
    }

    /// <summary>
    /// (items, tokens, head width) for the backward: one short block; two groups of 64 and three staged blocks of 32 at
    /// SiT-XL's 72 channels (the last k-step half zeros); its widest head; one full group and two full staged blocks at
    /// SiT-S's 64 channels. The kernels are compiled for any width at 8 and 80 channels and for the width at 64 and 72
    /// (FlashHeads), so each compiled kind is held to the reference, forward and backward.
    /// </summary>
    public static TheoryData<int, int, int> BackwardShapes => new() { { 2, 9, 8 }, { 1, 70, 72 }, { 1, 24, 80 }, { 1, 64, 64 } };

    [Theory]
    [MemberData(nameof(BackwardShapes))]
    public void FlashBackward_IsTheGradientOfSoftmaxAttention(int items, int tokens, int headDim)
    {
        int length = items * tokens * headDim;
        var q = KernelData.Uniform(length, 520, -2f, 2f).Select(Bf16.Round).ToArray();
        var k = KernelData.Uniform(length, 521, -2f, 2f).Select(Bf16.Round).ToArray();
        var v = KernelData.Uniform(length, 522, -3f, 3f).Select(Bf16.Round).ToArray();
        var dO = KernelData.Uniform(length, 523, -1f, 1f).Select(Bf16.Round).ToArray();
        float scale = 1f / MathF.Sqrt(headDim);
        var expected = HostBackward(q, k, v, dO, items, tokens, headDim, scale);
        using var dq16 = device.Accelerator.Allocate1D(q);
        using var dk16 = device.Accelerator.Allocate1D(k);
        using var dv16 = device.Accelerator.Allocate1D(v);
        using var dO16 = device.Accelerator.Allocate1D(dO);
        using var lse = device.Upload(expected.Lse);
        using var delta = device.Upload(expected.Delta);
        var poison = Enumerable.Repeat(float.NaN, length + 5).ToArray(); // every element overwritten; 5 past the end stay NaN
        using var dq = device.Upload(poison);
        using var dk = device.Upload(poison);
        using var dv = device.Upload(poison);
        void Run() => device.Kernels.FlashBackward(dq16.View, dk16.View, dv16.View, dO16.View, lse.View, delta.View, dq.View, dk.View, dv.View, items, tokens, headDim, scale);
        if (!device.Kernels.FlashKernelsRun)
        {
            Assert.Contains("warps of 32 lanes", Assert.Throws<ArgumentException>(Run).Message);
            return;
        }
        Run();
        foreach (var (name, buffer, exact, magnitude) in new[] { ("dq", dq, expected.Dq, expected.DqMagnitude), ("dk", dk, expected.Dk, expected.DkMagnitude), ("dv", dv, expected.Dv, expected.DvMagnitude) })
        {
            var actual = device.Download(buffer);
            Assert.All(actual[length..], x => Assert.True(float.IsNaN(x), $"the kernel wrote past {name}"));
            for (int i = 0; i < length; i++)
                // P and dS rounded to bf16 (2^-9 each) where the products read them: within 2^-7 of the terms' magnitude.
                Assert.True(Math.Abs(actual[i] - exact[i]) <= magnitude[i] / 128 + 1e-6,
                    $"{name}[{i}]: expected {exact[i]:R} (terms of magnitude {magnitude[i]:G3}), got {actual[i]:R}");
        }
    }

    /// <summary>Full attention's gradients in double from bf16 inputs, each with the sum of its terms' magnitudes, and the lse and delta the kernels read.</summary>
    private static (float[] Lse, float[] Delta, double[] Dq, double[] DqMagnitude, double[] Dk, double[] DkMagnitude, double[] Dv, double[] DvMagnitude)
        HostBackward(ushort[] q16, ushort[] k16, ushort[] v16, ushort[] dO16, int items, int n, int hd, float scale)
    {
        double[] W(ushort[] x) => x.Select(b => (double)Bf16.Widen(b)).ToArray();
        double[] q = W(q16), k = W(k16), v = W(v16), dO = W(dO16);
        int length = items * n * hd;
        var lse = new float[items * n];
        var delta = new float[items * n];
        double[] dq = new double[length], dk = new double[length], dv = new double[length];
        double[] dqm = new double[length], dkm = new double[length], dvm = new double[length];
        var p = new double[n, n];
        var ds = new double[n, n];
        for (int item = 0; item < items; item++)
        {
            int b = item * n * hd;
            for (int i = 0; i < n; i++)
            {
                var logits = new double[n];
                for (int j = 0; j < n; j++)
                {
                    double dot = 0;
                    for (int c = 0; c < hd; c++) dot += q[b + i * hd + c] * k[b + j * hd + c];
                    logits[j] = dot * scale;
                }
                double max = logits.Max(), sum = logits.Sum(x => Math.Exp(x - max));
                lse[item * n + i] = (float)(max + Math.Log(sum));
                for (int j = 0; j < n; j++) p[i, j] = Math.Exp(logits[j] - max) / sum;
                double rowDelta = 0; // rowsum(dO O)
                for (int c = 0; c < hd; c++)
                {
                    double o = 0;
                    for (int j = 0; j < n; j++) o += p[i, j] * v[b + j * hd + c];
                    rowDelta += dO[b + i * hd + c] * o;
                }
                delta[item * n + i] = (float)rowDelta;
                for (int j = 0; j < n; j++)
                {
                    double dp = 0;
                    for (int c = 0; c < hd; c++) dp += dO[b + i * hd + c] * v[b + j * hd + c];
                    ds[i, j] = p[i, j] * (dp - delta[item * n + i]);
                }
            }
            for (int i = 0; i < n; i++)
            for (int c = 0; c < hd; c++)
            for (int j = 0; j < n; j++)
            {
                double tq = scale * ds[i, j] * k[b + j * hd + c], tk = scale * ds[j, i] * q[b + j * hd + c], tv = p[j, i] * dO[b + j * hd + c];
                dq[b + i * hd + c] += tq;
                dqm[b + i * hd + c] += Math.Abs(tq);
                dk[b + i * hd + c] += tk;
                dkm[b + i * hd + c] += Math.Abs(tk);
                dv[b + i * hd + c] += tv;
                dvm[b + i * hd + c] += Math.Abs(tv);
            }
        }
        return (lse, delta, dq, dqm, dk, dkm, dv, dvm);
    }

    /// <summary>Row <paramref name="row"/> of item <paramref name="item"/>'s attention in double, and its log-sum-exp.</summary>
    private static (double[] O, double Lse) Attention(ushort[] q, ushort[] k, ushort[] v, int item, int row, int tokens, int hd, float scale)
    {
        long itemBase = (long)item * tokens * hd;
        var logits = new double[tokens];
        for (int j = 0; j < tokens; j++)
        {
            double dot = 0;
            for (int c = 0; c < hd; c++) dot += (double)Bf16.Widen(q[itemBase + row * hd + c]) * Bf16.Widen(k[itemBase + j * hd + c]);
            logits[j] = dot * scale;
        }
        double max = logits.Max(), sum = logits.Sum(x => Math.Exp(x - max));
        var o = new double[hd];
        for (int j = 0; j < tokens; j++)
        {
            double p = Math.Exp(logits[j] - max) / sum;
            for (int c = 0; c < hd; c++) o[c] += p * Bf16.Widen(v[itemBase + j * hd + c]);
        }
        return (o, max + Math.Log(sum));
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, where the kernel runs (its instruction emulated).</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class FlashMmaKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : FlashMmaKernelsTests(device);
