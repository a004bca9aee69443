using ILGPU.Runtime;
using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Models;

/// <summary>
/// Full attention's core as products on the CPU accelerator, at tile sizes that take whole items at once, split the
/// items over tiles (the last one short) and split each item's query rows (the last run short): in fp32 the forward
/// against the one-thread-per-row reference kernel (1e-5, the sums run in another order) and the backward against the
/// CPU layer's gradients (1e-3, the gradient tolerance); in bf16 against the same algorithm run on the host with the operands rounded where the products read them.
/// In bf16 the operands written by their producers (head-major moves, softmaxes) give the separate roundings' bits.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class AttentionProductsTests(AcceleratorFixture device)
{
    // 2 images of a 3 x 3 grid (9 tokens), 3 heads of 5 channels: 6 items of 81 logits.
    private const int Batch = 2, Grid = 3, Heads = 3, HeadDim = 5, Tokens = Grid * Grid, Dim = Heads * HeadDim;
    private static readonly AttentionGeometry Geometry = new(Batch, Grid, Heads, HeadDim, 1, 1f / MathF.Sqrt(HeadDim));

    /// <summary>Tile sizes: every item at once; 4 items per tile (6 = 4 + 2); 4 rows per tile (9 = 4 + 4 + 1).</summary>
    public static TheoryData<long> TileSizes => new() { AttentionProducts.DefaultTileFloats, 4 * Tokens * Tokens, 4 * Tokens };

    [Fact]
    public void Tiling_CoversEveryItemAndRowOnce()
    {
        foreach (long tileFloats in new long[] { AttentionProducts.DefaultTileFloats, 4 * Tokens * Tokens, 4 * Tokens, 1 })
        {
            using var gemm = new IlgpuGemm(device.Accelerator);
            using var products = new AttentionProducts(device.Kernels, gemm, DevicePrecision.Fp32, tileFloats);
            var seen = new int[Batch * Heads * Tokens];
            foreach (var (i0, ni, r0, rows) in products.Tiling(Batch * Heads, Tokens))
            {
                Assert.True((long)ni * rows * Tokens <= Math.Max(tileFloats, Tokens), $"a tile of {ni} x {rows} rows is over {tileFloats} logits");
                for (int i = i0; i < i0 + ni; i++)
                for (int r = r0; r < r0 + rows; r++) seen[i * Tokens + r]++;
            }
            Assert.All(seen, count => Assert.Equal(1, count));
        }
    }

    [Fact]
    public void ATileSizeChangedBetweenCalls_GivesThatSizesBits()
    {
        // The device check times one network at several tile sizes: the scratch sized for the default tile must serve
        // a smaller one as a fresh instance of that size would.
        var qkv = KernelData.Uniform(Batch * Tokens * 3 * Dim, 97, -2f, 2f);
        using var gemm = new IlgpuGemm(device.Accelerator);
        using var products = new AttentionProducts(device.Kernels, gemm, DevicePrecision.Fp32);
        using var input = device.Upload(qkv);
        using var o = device.Accelerator.Allocate1D<float>(Batch * Tokens * Dim);
        using var lse = device.Accelerator.Allocate1D<float>(Batch * Heads * Tokens);
        products.FullForward(input.View, default, o.View, lse.View, Geometry);
        products.TileFloats = 4 * Tokens;
        products.FullForward(input.View, default, o.View, lse.View, Geometry);
        device.Accelerator.Synchronize();

        var (expectedO, expectedLse) = Forward(qkv, DevicePrecision.Fp32, 4 * Tokens);
        KernelData.AssertSameBits(expectedO, device.Download(o));
        KernelData.AssertSameBits(expectedLse, device.Download(lse));
        Assert.Throws<ArgumentOutOfRangeException>(() => products.TileFloats = 0);
        Assert.Equal(4 * Tokens, products.TileFloats);
    }

    [Theory]
    [MemberData(nameof(TileSizes))]
    public void Forward_MatchesTheReferenceKernel(long tileFloats)
    {
        var qkv = KernelData.Uniform(Batch * Tokens * 3 * Dim, 91, -2f, 2f);
        var (expectedO, expectedLse) = ReferenceForward(qkv);
        var (o, lse) = Forward(qkv, DevicePrecision.Fp32, tileFloats);
        AssertClose(expectedO, o, 1e-5, "o");
        AssertClose(expectedLse, lse, 1e-5, "lse");
    }

    [Theory]
    [MemberData(nameof(TileSizes))]
    public void Backward_MatchesTheCpuLayer(long tileFloats)
    {
        var attention = CpuLayer(92);
        var dqkv = Backward(attention, DevicePrecision.Fp32, tileFloats);
        GradientData.AssertClose(attention.QkvGradient.Span, dqkv, 1e-3, "dqkv");
    }

    [Fact]
    public void Bf16_EqualsTheAlgorithmWithItsOperandsRoundedToBf16()
    {
        // Against the host's double-precision run of the same algorithm with q, k, v, dO, P and dS rounded to bf16 where
        // the products read them: only the products' fp32 sums differ (1e-3). And not the fp32 result: the roundings happened.
        var qkv = KernelData.Uniform(Batch * Tokens * 3 * Dim, 93, -2f, 2f);
        var (o16, _) = Forward(qkv, DevicePrecision.Bf16, 4 * Tokens);
        AssertClose(HostForward(qkv, bf16: true), o16, 1e-3, "bf16 o");
        Assert.True(MaxDifference(HostForward(qkv, bf16: false), o16) > 1e-3, "the bf16 forward gave the fp32 result: its operands were not rounded");

        var attention = CpuLayer(94);
        var d16 = Backward(attention, DevicePrecision.Bf16, 4 * Tokens);
        var expected = HostBackward(attention, bf16: true);
        GradientData.AssertClose(expected, d16, 1e-3, "bf16 dqkv");
        Assert.True(MaxDifference(HostBackward(attention, bf16: false), d16) > 1e-2, "the bf16 backward gave the fp32 result: its operands were not rounded");
    }

    [Theory]
    [InlineData(false, AttentionProducts.DefaultTileFloats)]
    [InlineData(false, 4 * Tokens)]
    [InlineData(true, AttentionProducts.DefaultTileFloats)]
    [InlineData(true, 4 * Tokens * Tokens)]
    public void Bf16OperandsFromTheirProducers_GiveTheSeparateRoundingsBits(bool warpRows, long tileFloats)
    {
        var kernels = warpRows ? device.WarpRowKernels : device.ThreadRowKernels;
        var qkv = KernelData.Uniform(Batch * Tokens * 3 * Dim, 98, -2f, 2f);
        var (o, lse) = Forward(qkv, DevicePrecision.Bf16, tileFloats, kernels, operandsFromProducers: false);
        var (fusedO, fusedLse) = Forward(qkv, DevicePrecision.Bf16, tileFloats, kernels, true, null, out var fusedO16);
        device.AssertSameBits(o, fusedO);
        device.AssertSameBits(lse, fusedLse);
        Assert.Equal(fusedO.Select(Bf16.Round), fusedO16); // the move back to rows wrote proj's bf16 operand too
        // A sampling forward: the same bf16 operand and lse, o's fp32 rows left as they were.
        var (staleO, samplingLse) = Forward(qkv, DevicePrecision.Bf16, tileFloats, kernels, true, null, out var samplingO16, forBackward: false);
        Assert.Equal(fusedO16, samplingO16);
        device.AssertSameBits(lse, samplingLse);
        device.AssertSameBits(KernelData.Uniform(Batch * Tokens * Dim, 95), staleO);

        var attention = CpuLayer(99);
        var dqkv = Backward(attention, DevicePrecision.Bf16, tileFloats, kernels, operandsFromProducers: false);
        var fusedDqkv = Backward(attention, DevicePrecision.Bf16, tileFloats, kernels, operandsFromProducers: true, out var dqkv16);
        device.AssertSameBits(dqkv, fusedDqkv);
        Assert.Equal(fusedDqkv.Select(Bf16.Round), dqkv16); // the moves back to rows wrote dqkv's bf16 copy too

        // Mediator attention: T's head-major copy is written in bf16 directly, A1's and A2's by their softmaxes (their
        // fp32 values too only when kept for a backward).
        var g = new AttentionGeometry(Batch, Grid, Heads, HeadDim, 2, 1f / MathF.Sqrt(HeadDim));
        int m = g.Mediators;
        var bias1 = KernelData.Uniform(Heads * m * Tokens, 102, -1f, 1f);
        var bias2 = KernelData.Uniform(Heads * Tokens * m, 103, -1f, 1f);
        var weight = KernelData.Uniform(9 * Dim, 104, -0.5f, 0.5f);
        var dwcBias = KernelData.Uniform(Dim, 105, -0.5f, 0.5f);
        float[][] Mediator(bool fromProducers, out ushort[]? o16, bool forBackward = true)
        {
            using var gemm = new IlgpuGemm(device.Accelerator);
            using var products = new AttentionProducts(kernels, gemm, DevicePrecision.Bf16, tileFloats, fromProducers);
            using var dq = device.Upload(qkv);
            using var b1 = device.Upload(bias1);
            using var b2 = device.Upload(bias2);
            using var w = device.Upload(weight);
            using var wb = device.Upload(dwcBias);
            using var t = device.Accelerator.Allocate1D<float>(Batch * m * Dim);
            using var a1 = device.Accelerator.Allocate1D<float>(Batch * Heads * m * Tokens);
            using var vm = device.Accelerator.Allocate1D<float>(Batch * Heads * m * HeadDim);
            using var a2 = device.Accelerator.Allocate1D<float>(Batch * Heads * Tokens * m);
            using var mo = device.Accelerator.Allocate1D<float>(Batch * Tokens * Dim);
            using var mo16 = device.Accelerator.Allocate1D<ushort>(fromProducers ? Batch * Tokens * Dim : 0);
            products.MediatorForward(dq.View, default, b1.View, b2.View, w.View, wb.View, t.View, a1.View, vm.View, a2.View, mo.View, g, mo16.View, forBackward);
            device.Accelerator.Synchronize();
            o16 = fromProducers ? mo16.GetAsArray1D() : null;
            return [device.Download(t), device.Download(a1), device.Download(vm), device.Download(a2), device.Download(mo)];
        }
        var expected = Mediator(fromProducers: false, out _);
        var actual = Mediator(fromProducers: true, out var actualO16);
        for (int i = 0; i < expected.Length; i++) device.AssertSameBits(expected[i], actual[i]);
        Assert.Contains(expected[4], v => v != 0);
        Assert.Equal(actual[4].Select(Bf16.Round), actualO16!); // the conv's pass wrote proj's bf16 operand too
        // A sampling forward (nothing kept for a backward): T and Vm keep their bits, and proj's bf16 operand (its fp32
        // rows are not written).
        var sampling = Mediator(fromProducers: true, out var mediatorO16, forBackward: false);
        foreach (int i in new[] { 0, 2 }) device.AssertSameBits(expected[i], sampling[i]);
        Assert.Equal(actualO16!, mediatorO16!);
    }

    [Theory]
    [InlineData(DevicePrecision.Fp32, true)]
    [InlineData(DevicePrecision.Bf16, true)]
    [InlineData(DevicePrecision.Bf16, false)]
    public void QkvBiasAddedByTheMoves_GivesTheBiasedRowsBits(DevicePrecision precision, bool operandsFromProducers)
    {
        // qkv without its bias and the bias (3D) against qkv with the bias added to every row, forward and backward.
        var qkv = KernelData.Uniform(Batch * Tokens * 3 * Dim, 106, -2f, 2f);
        var bias = KernelData.Uniform(3 * Dim, 107, -1f, 1f);
        var biasedRows = qkv.Select((x, i) => x + bias[i % (3 * Dim)]).ToArray();
        var (o, lse) = Forward(biasedRows, precision, 4 * Tokens, operandsFromProducers: operandsFromProducers);
        var (o2, lse2) = Forward(qkv, precision, 4 * Tokens, operandsFromProducers: operandsFromProducers, qkvBias: bias);
        device.AssertSameBits(o, o2);
        device.AssertSameBits(lse, lse2);
        Assert.True(MaxDifference(o, Forward(qkv, precision, 4 * Tokens).O) > 1e-3, "the bias changes the output: the comparison sees it");

        var attention = CpuLayer(108);
        var saved = attention.SavedQkv.Span.ToArray();
        var unbiased = saved.Select((x, i) => x - bias[i % (3 * Dim)]).ToArray(); // so that unbiased + bias is near the saved rows
        var rows = unbiased.Select((x, i) => x + bias[i % (3 * Dim)]).ToArray();
        var dqkv = Backward(attention, precision, 4 * Tokens, null, operandsFromProducers, out _, qkv: rows);
        var dqkv2 = Backward(attention, precision, 4 * Tokens, null, operandsFromProducers, out _, qkv: unbiased, qkvBias: bias);
        device.AssertSameBits(dqkv, dqkv2);
    }

    [Theory]
    [InlineData(AttentionProducts.DefaultTileFloats)]
    [InlineData(4 * Tokens)]
    public void HeadsKeptByTheForward_GiveTheBackwardThatMovesThemAgain(long tileFloats)
    {
        // The forward writes head-major bf16 q, k, v (with qkv's bias) into the caller's buffer; the backward reading them
        // there (and not qkv) gives the bits of the backward that moves them from qkv again.
        var attention = CpuLayer(109);
        var bias = KernelData.Uniform(3 * Dim, 110, -1f, 1f);
        var unbiased = attention.SavedQkv.Span.ToArray().Select((x, i) => x - bias[i % (3 * Dim)]).ToArray();
        using var gemm = new IlgpuGemm(device.Accelerator);
        using var products = new AttentionProducts(device.Kernels, gemm, DevicePrecision.Bf16, tileFloats);
        using var qkv = device.Upload(unbiased);
        using var dBias = device.Upload(bias);
        using var kept = device.Accelerator.Allocate1D<ushort>(Batch * Tokens * 3 * Dim);
        using var o = device.Accelerator.Allocate1D<float>(Batch * Tokens * Dim);
        using var lse = device.Accelerator.Allocate1D<float>(Batch * Heads * Tokens);
        products.FullForward(qkv.View, dBias.View, o.View, lse.View, Geometry, kept.View);
        var (expectedO, expectedLse) = Forward(unbiased, DevicePrecision.Bf16, tileFloats, qkvBias: bias);
        device.AssertSameBits(expectedO, device.Download(o));
        device.AssertSameBits(expectedLse, device.Download(lse));

        float[] Backward(bool fromKept)
        {
            using var dO = device.Upload(attention.HeadOutputGradient.Span.ToArray());
            using var delta = device.Accelerator.Allocate1D<float>(Batch * Heads * Tokens);
            using var dqkv = device.Accelerator.Allocate1D<float>(Batch * Tokens * 3 * Dim);
            // Reading the kept heads, the backward must not read qkv: give it garbage there.
            using var rows = device.Upload(fromKept ? KernelData.Uniform(unbiased.Length, 111) : unbiased);
            products.FullBackward(rows.View, dBias.View, o.View, dO.View, lse.View, delta.View, dqkv.View, Geometry, default,
                fromKept ? kept.View : default);
            return device.Download(dqkv);
        }
        device.AssertSameBits(Backward(fromKept: false), Backward(fromKept: true));
    }

    [Theory]
    [InlineData(AttentionProducts.DefaultTileFloats, true)]
    [InlineData(4 * Tokens * Tokens, true)]
    [InlineData(4 * Tokens, true)]
    [InlineData(4 * Tokens, false)]
    public void KeptProbabilities_AreTheForwardsPInBf16(long tileFloats, bool operandsFromProducers)
    {
        // A bf16 training forward keeps P (B, H, N, N) for the backward: the output and lse are the bits of the forward
        // that keeps nothing, and each kept value is exp(logit - lse) rounded to bf16 (half an ulp, 2^-9 relative, plus
        // the logit's fp32 sums), at its item, row and key.
        var qkv = KernelData.Uniform(Batch * Tokens * 3 * Dim, 114, -2f, 2f);
        var (o, lse) = Forward(qkv, DevicePrecision.Bf16, tileFloats, operandsFromProducers: operandsFromProducers);
        var (keptO, keptLse, p16) = ForwardKeepingP(qkv, tileFloats, operandsFromProducers);
        device.AssertSameBits(o, keptO);
        device.AssertSameBits(lse, keptLse);
        for (int b = 0; b < Batch; b++)
        for (int h = 0; h < Heads; h++)
        for (int i = 0; i < Tokens; i++)
        for (int j = 0; j < Tokens; j++)
        {
            double p = Math.Exp(Logit(qkv, b, h, i, j, bf16: true) - lse[(b * Heads + h) * Tokens + i]);
            float kept = Bf16.Widen(p16[((b * Heads + h) * Tokens + i) * Tokens + j]);
            Assert.True(Math.Abs(kept - p) <= Math.Pow(2, -8) * p + 1e-6, $"P of image {b}, head {h}, row {i}, key {j}: expected {p:R}, kept {kept:R}");
        }
        Assert.Equal(ForwardKeepingP(qkv, tileFloats, !operandsFromProducers).P16, p16); // both roundings keep the same bits
    }

    [Theory]
    [MemberData(nameof(TileSizes))]
    public void KeptProbabilities_GiveTheBackwardFromThatP(long tileFloats)
    {
        // The backward from the kept P (S not made again, lse not read) against the host's run of the algorithm with
        // that P, 1e-3 as the bf16 backward's; operands from their producers give the separate roundings' bits.
        var attention = CpuLayer(115);
        var (_, _, p16) = ForwardKeepingP(attention.SavedQkv.Span.ToArray(), tileFloats, operandsFromProducers: true);
        var fused = Backward(attention, DevicePrecision.Bf16, tileFloats, null, operandsFromProducers: true, out _, keptP: p16);
        var separate = Backward(attention, DevicePrecision.Bf16, tileFloats, null, operandsFromProducers: false, out _, keptP: p16);
        device.AssertSameBits(separate, fused);
        GradientData.AssertClose(HostBackward(attention, bf16: true, keptP: p16), fused, 1e-3, "dqkv from the kept P");
        var zeros = new ushort[p16.Length];
        Assert.True(MaxDifference(fused, Backward(attention, DevicePrecision.Bf16, tileFloats, null, true, out _, keptP: zeros)) > 1e-2,
            "the backward did not read the kept P");
    }

    /// <summary>The bf16 forward of qkv that keeps P: o, lse and the kept P (B, H, N, N).</summary>
    private (float[] O, float[] Lse, ushort[] P16) ForwardKeepingP(float[] qkv, long tileFloats, bool operandsFromProducers)
    {
        using var gemm = new IlgpuGemm(device.Accelerator);
        using var products = new AttentionProducts(device.Kernels, gemm, DevicePrecision.Bf16, tileFloats, operandsFromProducers);
        using var input = device.Upload(qkv);
        using var o = device.Upload(KernelData.Uniform(Batch * Tokens * Dim, 95));
        using var lse = device.Upload(KernelData.Uniform(Batch * Heads * Tokens, 96));
        using var p16 = device.Accelerator.Allocate1D<ushort>(Batch * Heads * Tokens * Tokens);
        using var o16 = device.Accelerator.Allocate1D<ushort>(operandsFromProducers ? Batch * Tokens * Dim : 0);
        products.FullForward(input.View, default, o.View, lse.View, Geometry, o16: o16.View, probabilities16: p16.View);
        device.Accelerator.Synchronize();
        return (device.Download(o), device.Download(lse), p16.GetAsArray1D());
    }

    [Fact]
    public void KeptProbabilities_NeedBf16AndEveryItemsRows()
    {
        using var gemm = new IlgpuGemm(device.Accelerator);
        using var fp32 = new AttentionProducts(device.Kernels, gemm, DevicePrecision.Fp32);
        using var bf16 = new AttentionProducts(device.Kernels, gemm, DevicePrecision.Bf16);
        using var qkv = device.Upload(KernelData.Uniform(Batch * Tokens * 3 * Dim, 116));
        using var o = device.Accelerator.Allocate1D<float>(Batch * Tokens * Dim);
        using var lse = device.Accelerator.Allocate1D<float>(Batch * Heads * Tokens);
        using var p16 = device.Accelerator.Allocate1D<ushort>(Batch * Heads * Tokens * Tokens);
        var ex = Assert.Throws<ArgumentException>(() => fp32.FullForward(qkv.View, default, o.View, lse.View, Geometry, probabilities16: p16.View));
        Assert.Contains("bf16", ex.Message);
        var shortP = p16.View.SubView(0, p16.Length - 1);
        Assert.Throws<ArgumentException>(() => bf16.FullForward(qkv.View, default, o.View, lse.View, Geometry, probabilities16: shortP));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FusedBackward_AgreesWithTheTiles_WhereTheKernelsRun(bool operandsFromProducers)
    {
        // 1 image of 9 x 9 tokens, 2 heads of 8: the forward on the tiles, then the backward from its o and lse on the
        // tiles (which make S again) and on the fused kernels.
        var g = new AttentionGeometry(1, 9, 2, 8, 1, 1f / MathF.Sqrt(8));
        int n = g.Tokens, d = g.Dim;
        using var gemm = new IlgpuGemm(device.Accelerator);
        using var products = new AttentionProducts(device.Kernels, gemm, DevicePrecision.Bf16, operandsFromProducers: operandsFromProducers);
        using var qkv = device.Upload(KernelData.Uniform(n * 3 * d, 140, -2f, 2f));
        using var bias = device.Upload(KernelData.Uniform(3 * d, 141, -0.5f, 0.5f));
        using var dO = device.Upload(KernelData.Uniform(n * d, 142, -1f, 1f));
        using var o = device.Accelerator.Allocate1D<float>(n * d);
        using var lse = device.Accelerator.Allocate1D<float>(2 * n);
        using var delta = device.Accelerator.Allocate1D<float>(2 * n);
        products.FullForward(qkv.View, bias.View, o.View, lse.View, g);
        float[] Run(bool fused)
        {
            products.FusedBackward = fused;
            using var dqkv = device.Accelerator.Allocate1D<float>(n * 3 * d);
            products.FullBackward(qkv.View, bias.View, o.View, dO.View, lse.View, delta.View, dqkv.View, g);
            return device.Download(dqkv);
        }
        var tiles = Run(false);
        var fused = Run(true);
        if (!device.Kernels.FlashKernelsRun)
        {
            device.AssertSameBits(tiles, fused); // 4-lane warps: the tiles run either way
            return;
        }
        // The same algorithm; P's exponentials in base 2 and the products' sums in other orders can move a bf16 rounding of P or dS.
        GradientData.AssertClose(tiles, fused, 1e-2, "dqkv, fused against the tiles");
        Assert.True(MaxDifference(tiles, fused) > 0, "the fused backward gave the tiles' bits: it did not run");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FusedForward_AgreesWithTheTiles_WhereTheKernelRuns(bool operandsFromProducers)
    {
        // 1 image of 9 x 9 tokens (two row and key blocks of the fused kernel, the last ones short), 2 heads of 8 channels.
        var g = new AttentionGeometry(1, 9, 2, 8, 1, 1f / MathF.Sqrt(8));
        int n = g.Tokens, d = g.Dim;
        var qkv = KernelData.Uniform(n * 3 * d, 130, -2f, 2f);
        var bias = KernelData.Uniform(3 * d, 131, -0.5f, 0.5f);
        using var gemm = new IlgpuGemm(device.Accelerator);
        using var products = new AttentionProducts(device.Kernels, gemm, DevicePrecision.Bf16, operandsFromProducers: operandsFromProducers);
        using var input = device.Upload(qkv);
        using var qkvBias = device.Upload(bias);
        (float[] O, float[] Lse) Run(bool fused)
        {
            products.FusedForward = fused;
            using var o = device.Accelerator.Allocate1D<float>(n * d);
            using var lse = device.Accelerator.Allocate1D<float>(2 * n);
            products.FullForward(input.View, qkvBias.View, o.View, lse.View, g);
            return (device.Download(o), device.Download(lse));
        }
        var tiles = Run(false);
        var fused = Run(true);
        if (!device.Kernels.FlashKernelsRun)
        {
            // 4-lane warps: the tiles run either way.
            device.AssertSameBits(tiles.O, fused.O);
            device.AssertSameBits(tiles.Lse, fused.Lse);
            return;
        }
        // P rounded to bf16 before the division by the row's sum (fused) or after it (tiles): 2^-8 of |v| (at most 4.5) apart at most.
        Assert.True(MaxDifference(tiles.O, fused.O) <= 4.5 / 256, $"o differs by {MaxDifference(tiles.O, fused.O):E2}");
        Assert.True(MaxDifference(tiles.O, fused.O) > 0, "the fused kernel gave the tiles' bits: it did not run");
        KernelData.AssertRelative(tiles.Lse, fused.Lse, 1e-5);
    }

    [Theory]
    [InlineData("SiT-S/2")]
    [InlineData("SiT-B/2")]
    [InlineData("SiT-L/2")]
    [InlineData("SiT-XL/2")]
    [InlineData("DiT-XL/4")]
    public void KeptProbabilities_AtEverySizeOf256Pixels_NotAt512OrWithMediators(string model)
    {
        // 256 px: 256 tokens or fewer, P's row (H N) at most fc1's (4D); 512 px: 1,024 tokens, 4 H N > 4D at every size.
        var small = ModelRegistry.Get(model, 256);
        var large = ModelRegistry.Get(model, 512);
        Assert.True(AttentionProducts.KeepsProbabilities(small), $"{model} at {small.NumTokens} tokens should keep P");
        Assert.Equal(large.NumTokens <= 256, AttentionProducts.KeepsProbabilities(large));
        Assert.False(AttentionProducts.KeepsProbabilities(ModelRegistry.Get(model, 256, mediators: 16)));
    }

    [Theory]
    [InlineData(8, true)] // 16 tokens, 2 heads: a row of P is 32 values, fc1's 4 x 16 = 64
    [InlineData(16, false)] // 64 tokens: 128 values, wider than fc1's row
    public void KeptProbabilities_WhereTheRuleKeepsThem_UnlessTheFusedBackwardMakesSAgain(int inputSize, bool kept)
    {
        var config = new ModelConfig
        {
            InputSize = inputSize, PatchSize = 2, InChannels = 2, HiddenSize = 16, Depth = 2, NumHeads = 2, MlpRatio = 2.0,
            NumClasses = 3, Attention = AttentionKind.Full,
        };
        Assert.Equal(kept, AttentionProducts.KeepsProbabilities(config));
        using var gemm = new IlgpuGemm(device.Accelerator);
        using var products = new AttentionProducts(device.Kernels, gemm, DevicePrecision.Bf16);
        Assert.Equal(kept, products.KeepsProbabilitiesFor(config));
        products.FusedBackward = true; // runs on 32-lane warps only: elsewhere P is kept as before
        Assert.Equal(device.Kernels.FlashKernelsRun, products.FusesBackward(config));
        Assert.Equal(kept && !device.Kernels.FlashKernelsRun, products.KeepsProbabilitiesFor(config));
        using var training = new DeviceActivations(config, 3, device.Accelerator, perBlock: true, bf16Operands: true, bf16Products: true, keepsProbabilities: kept);
        using var sampling = new DeviceActivations(config, 3, device.Accelerator, perBlock: false, bf16Operands: true, bf16Products: true, keepsProbabilities: kept);
        for (int block = 0; block < config.Depth; block++)
            Assert.Equal(kept ? 3L * config.NumHeads * config.NumTokens * config.NumTokens : 0, training.Block(block).Probabilities16.Length);
        Assert.Equal(0, sampling.Block(0).Probabilities16.Length);
    }

    [Theory]
    [InlineData(2, 4, 2, 3, 2, false)]
    [InlineData(1, 5, 2, 4, 3, false)] // a grid the mediator grid does not divide: overlapping pooling bins
    [InlineData(2, 4, 2, 3, 2, true)]
    public void MediatorForward_MatchesTheReferenceKernelsOnEverySavedTensor(int batch, int grid, int heads, int hd, int medGrid, bool bf16)
    {
        // fp32: the products sum in another order than the reference kernels, 1e-5 of max(1, |expected|). bf16: within
        // bf16's rounding of the fp32 reference (3e-2, as the bf16 forward's bound) and not equal to it.
        var g = new AttentionGeometry(batch, grid, heads, hd, medGrid, 1f / MathF.Sqrt(hd));
        int n = g.Tokens, d = g.Dim, m = g.Mediators;
        var qkv = KernelData.Uniform(batch * n * 3 * d, 101, -2f, 2f);
        var bias1 = KernelData.Uniform(heads * m * n, 102, -1f, 1f);
        var bias2 = KernelData.Uniform(heads * n * m, 103, -1f, 1f);
        var weight = KernelData.Uniform(9 * d, 104, -0.5f, 0.5f);
        var dwcBias = KernelData.Uniform(d, 105, -0.5f, 0.5f);
        float[][] Run(bool products, DevicePrecision precision)
        {
            using var gemm = new IlgpuGemm(device.Accelerator);
            using var attention = new AttentionProducts(device.Kernels, gemm, precision);
            using var dq = device.Upload(qkv);
            using var b1 = device.Upload(bias1);
            using var b2 = device.Upload(bias2);
            using var w = device.Upload(weight);
            using var wb = device.Upload(dwcBias);
            // Stale values every output must overwrite.
            using var t = device.Upload(KernelData.Uniform(batch * m * d, 106));
            using var a1 = device.Upload(KernelData.Uniform(batch * heads * m * n, 107));
            using var vm = device.Upload(KernelData.Uniform(batch * heads * m * hd, 108));
            using var a2 = device.Upload(KernelData.Uniform(batch * heads * n * m, 109));
            using var o = device.Upload(KernelData.Uniform(batch * n * d, 110));
            if (products) attention.MediatorForward(dq.View, default, b1.View, b2.View, w.View, wb.View, t.View, a1.View, vm.View, a2.View, o.View, g);
            else device.Kernels.MediatorAttention(dq.View, b1.View, b2.View, w.View, wb.View, t.View, a1.View, vm.View, a2.View, o.View, g);
            return [device.Download(t), device.Download(a1), device.Download(vm), device.Download(a2), device.Download(o)];
        }
        var expected = Run(products: false, DevicePrecision.Fp32);
        var actual = Run(products: true, bf16 ? DevicePrecision.Bf16 : DevicePrecision.Fp32);
        string[] names = ["T", "A1", "Vm", "A2", "O"];
        for (int i = 0; i < names.Length; i++) AssertClose(expected[i], actual[i], bf16 ? 3e-2 : 1e-5, names[i]);
        if (bf16) Assert.True(MaxDifference(expected[4], actual[4]) > 1e-4, "the bf16 mediator forward gave the fp32 result: its operands were not rounded");
    }

    [Theory]
    [InlineData(2, 2, 4, 4, 4, DevicePrecision.Fp32)]
    [InlineData(1, 3, 3, 5, 4, DevicePrecision.Fp32)] // a 5x5 grid pooled to 2x2: overlapping bins
    [InlineData(2, 2, 4, 4, 4, DevicePrecision.Bf16)] // its products stay fp32 in bf16
    public void MediatorBackward_MatchesTheCpuLayer(int batch, int heads, int headDim, int grid, int mediators, DevicePrecision precision)
    {
        // Against the CPU layer's dqkv, dS1, dS2 and per-image depthwise gradients: the products sum in another order, 1e-3.
        int dim = heads * headDim, tokens = grid * grid, medGrid = (int)Math.Round(Math.Sqrt(mediators));
        var attention = new MediatorAttention("a.", dim, heads, grid, mediators);
        CpuAttentionLayers.Run(attention, batch, tokens, dim, 121);

        int maps = batch * heads * mediators * tokens, small = batch * heads * mediators * headDim;
        using var gemm = new IlgpuGemm(device.Accelerator);
        using var products = new AttentionProducts(device.Kernels, gemm, precision);
        using var qkv = device.Upload(attention.SavedQkv.Span.ToArray());
        using var t = device.Upload(attention.SavedTokens.Span.ToArray());
        using var a1 = device.Upload(attention.SavedA1.Span.ToArray());
        using var a2 = device.Upload(attention.SavedA2.Span.ToArray());
        using var vm = device.Upload(attention.SavedMediatorValues.Span.ToArray());
        using var taps = device.Upload(attention.SavedTaps.Span.ToArray());
        using var dO = device.Upload(attention.HeadOutputGradient.Span.ToArray());
        // Stale values every output must overwrite.
        using var dqkv = device.Upload(KernelData.Uniform(batch * tokens * 3 * dim, 122));
        using var dS1 = device.Upload(KernelData.Uniform(maps, 123));
        using var dS2 = device.Upload(KernelData.Uniform(maps, 124));
        using var dTaps = device.Upload(KernelData.Uniform(batch * 10 * dim, 125));
        using var dVm = device.Upload(KernelData.Uniform(small, 126));
        using var dT = device.Upload(KernelData.Uniform(small, 127));
        products.MediatorBackward(new MediatorBackwardViews(qkv.View, t.View, a1.View, a2.View, vm.View, taps.View, dO.View, dqkv.View, dS1.View,
            dS2.View, dTaps.View, dVm.View, dT.View), default, new AttentionGeometry(batch, grid, heads, headDim, medGrid, 1f / MathF.Sqrt(headDim)));
        GradientData.AssertClose(attention.QkvGradient.Span, device.Download(dqkv), 1e-3, "dqkv");
        GradientData.AssertClose(attention.KeyLogitGradient.Span, device.Download(dS1), 1e-3, "dS1");
        GradientData.AssertClose(attention.QueryLogitGradient.Span, device.Download(dS2), 1e-3, "dS2");
        GradientData.AssertClose(attention.DepthwiseGradientsPerImage.Span, device.Download(dTaps), 1e-3, "dTaps");
    }

    [Theory]
    [InlineData(DevicePrecision.Fp32, true)]
    [InlineData(DevicePrecision.Bf16, true)]
    [InlineData(DevicePrecision.Bf16, false)]
    public void MediatorQkvBiasAddedByItsReaders_GivesTheBiasedRowsBits(DevicePrecision precision, bool operandsFromProducers)
    {
        // qkv without its bias and the bias (3D) against qkv with the bias added to every row: the forward's saved
        // tensors and output, and the backward's dqkv, dS1, dS2 and depthwise gradients, bit for bit. A 5x5 grid pooled
        // to 2x2 (overlapping bins), so the pooling and the conv's edges read biased values in several places.
        const int batch = 2, heads = 2, headDim = 3, grid = 5, mediators = 4;
        int dim = heads * headDim, tokens = grid * grid, maps = batch * heads * mediators * tokens, small = batch * heads * mediators * headDim;
        var g = new AttentionGeometry(batch, grid, heads, headDim, 2, 1f / MathF.Sqrt(headDim));
        var bias = KernelData.Uniform(3 * dim, 131, -1f, 1f);
        float[] WithBias(float[] rows) => rows.Select((x, i) => x + bias[i % (3 * dim)]).ToArray();
        var attention = new MediatorAttention("a.", dim, heads, grid, mediators);
        CpuAttentionLayers.Run(attention, batch, tokens, dim, 132);
        var unbiased = attention.SavedQkv.Span.ToArray().Select((x, i) => x - bias[i % (3 * dim)]).ToArray();
        var weight = attention.DwcWeight.Value.Span.ToArray();
        var dwcBias = attention.DwcBias.Value.Span.ToArray();
        var bias1 = KernelData.Uniform(heads * mediators * tokens, 133, -1f, 1f);
        var bias2 = KernelData.Uniform(heads * tokens * mediators, 134, -1f, 1f);

        float[][] Run(float[] qkv, float[]? qkvBias)
        {
            using var gemm = new IlgpuGemm(device.Accelerator);
            using var products = new AttentionProducts(device.Kernels, gemm, precision, AttentionProducts.DefaultTileFloats, operandsFromProducers);
            using var dQkv = device.Upload(qkv);
            using var dBias = qkvBias is null ? null : device.Upload(qkvBias);
            using var b1 = device.Upload(bias1);
            using var b2 = device.Upload(bias2);
            using var w = device.Upload(weight);
            using var wb = device.Upload(dwcBias);
            using var t = device.Accelerator.Allocate1D<float>(batch * mediators * dim);
            using var a1 = device.Accelerator.Allocate1D<float>(maps);
            using var vm = device.Accelerator.Allocate1D<float>(small);
            using var a2 = device.Accelerator.Allocate1D<float>(maps);
            using var o = device.Accelerator.Allocate1D<float>(batch * tokens * dim);
            products.MediatorForward(dQkv.View, dBias?.View ?? default, b1.View, b2.View, w.View, wb.View, t.View, a1.View, vm.View, a2.View, o.View, g);

            // The backward from the layer's dO, with the depthwise weight as taps (9, D).
            var tapsHost = new float[9 * dim];
            for (int c = 0; c < dim; c++)
            for (int k = 0; k < 9; k++) tapsHost[k * dim + c] = weight[c * 9 + k];
            using var taps = device.Upload(tapsHost);
            using var dO = device.Upload(attention.HeadOutputGradient.Span.ToArray());
            using var outputs = new MediatorBackwardOutputs(device.Accelerator, batch, tokens, heads, headDim, mediators);
            products.MediatorBackward(outputs.Views(dQkv.View, t.View, a1.View, a2.View, vm.View, taps.View, dO.View), dBias?.View ?? default, g);
            return [device.Download(t), device.Download(a1), device.Download(vm), device.Download(a2), device.Download(o), .. outputs.Download()];
        }
        var expected = Run(WithBias(unbiased), null);
        var actual = Run(unbiased, bias);
        for (int i = 0; i < expected.Length; i++) device.AssertSameBits(expected[i], actual[i]);
        Assert.True(MaxDifference(expected[4], Run(unbiased, null)[4]) > 1e-3, "the bias changes the output: the comparison sees it");
    }

    /// <summary>x as the bf16 products read it: rounded to bf16 (and widened) when <paramref name="bf16"/>.</summary>
    private static double Read(float x, bool bf16) => bf16 ? Bf16.Widen(Bf16.Round(x)) : x;

    /// <summary>The scaled logit of query row i and key row j of image b, head h, from qkv (B*N, 3D), in double.</summary>
    private static double Logit(float[] qkv, int b, int h, int i, int j, bool bf16)
    {
        double dot = 0;
        for (int c = 0; c < HeadDim; c++)
            dot += Read(qkv[(b * Tokens + i) * 3 * Dim + h * HeadDim + c], bf16) * Read(qkv[(b * Tokens + j) * 3 * Dim + Dim + h * HeadDim + c], bf16);
        return Geometry.Scale * dot;
    }

    /// <summary>The forward's O (B*N, D) in double: exact softmax, P rounded as the PV product reads it.</summary>
    private static float[] HostForward(float[] qkv, bool bf16)
    {
        var o = new float[Batch * Tokens * Dim];
        var p = new double[Tokens];
        for (int b = 0; b < Batch; b++)
        for (int h = 0; h < Heads; h++)
        for (int i = 0; i < Tokens; i++)
        {
            for (int j = 0; j < Tokens; j++) p[j] = Logit(qkv, b, h, i, j, bf16);
            double max = p.Max(), sum = 0;
            for (int j = 0; j < Tokens; j++) sum += p[j] = Math.Exp(p[j] - max);
            for (int c = 0; c < HeadDim; c++)
            {
                double acc = 0;
                for (int j = 0; j < Tokens; j++) acc += Read((float)(p[j] / sum), bf16) * Read(qkv[(b * Tokens + j) * 3 * Dim + 2 * Dim + h * HeadDim + c], bf16);
                o[(b * Tokens + i) * Dim + h * HeadDim + c] = (float)acc;
            }
        }
        return o;
    }

    /// <summary>
    /// The backward's dqkv in double from the CPU layer's saved tensors, with P and dS rounded as the products read them;
    /// with <paramref name="keptP"/> (bf16 only; B, H, N, N) P is that one, in dV's product and in dS = P (dP - delta).
    /// </summary>
    private static float[] HostBackward(FullAttention attention, bool bf16, ushort[]? keptP = null)
    {
        var qkv = attention.SavedQkv.Span.ToArray();
        var o = attention.SavedHeadOutputs.Span.ToArray();
        var dO = attention.HeadOutputGradient.Span.ToArray();
        var lse = attention.SavedLogSumExp.Span.ToArray();
        var dqkv = new double[qkv.Length];
        int Row(int b, int r) => b * Tokens + r;
        for (int b = 0; b < Batch; b++)
        for (int h = 0; h < Heads; h++)
        for (int i = 0; i < Tokens; i++)
        {
            double delta = 0;
            for (int c = 0; c < HeadDim; c++) delta += (double)dO[Row(b, i) * Dim + h * HeadDim + c] * o[Row(b, i) * Dim + h * HeadDim + c];
            for (int j = 0; j < Tokens; j++)
            {
                float p = keptP is null
                    ? (float)Math.Exp(Logit(qkv, b, h, i, j, bf16) - lse[(b * Heads + h) * Tokens + i])
                    : Bf16.Widen(keptP[((b * Heads + h) * Tokens + i) * Tokens + j]);
                double dp = 0;
                for (int c = 0; c < HeadDim; c++)
                    dp += Read(dO[Row(b, i) * Dim + h * HeadDim + c], bf16) * Read(qkv[Row(b, j) * 3 * Dim + 2 * Dim + h * HeadDim + c], bf16);
                double pr = Read(p, bf16), ds = Read((float)(p * (dp - delta)), bf16);
                for (int c = 0; c < HeadDim; c++)
                {
                    int q = Row(b, i) * 3 * Dim + h * HeadDim + c, k = Row(b, j) * 3 * Dim + Dim + h * HeadDim + c;
                    dqkv[q] += Geometry.Scale * ds * Read(qkv[k], bf16);
                    dqkv[k] += Geometry.Scale * ds * Read(qkv[q], bf16);
                    dqkv[k + Dim] += pr * Read(dO[Row(b, i) * Dim + h * HeadDim + c], bf16);
                }
            }
        }
        return dqkv.Select(x => (float)x).ToArray();
    }

    private (float[] O, float[] Lse) ReferenceForward(float[] qkv)
    {
        using var dqkv = device.Upload(qkv);
        using var o = device.Accelerator.Allocate1D<float>(Batch * Tokens * Dim);
        using var lse = device.Accelerator.Allocate1D<float>(Batch * Heads * Tokens);
        device.Kernels.FlashAttention(dqkv.View, o.View, lse.View, Geometry);
        return (device.Download(o), device.Download(lse));
    }

    /// <summary>The products' forward of qkv (plus <paramref name="qkvBias"/>, 3D, added by the moves when given).</summary>
    private (float[] O, float[] Lse) Forward(float[] qkv, DevicePrecision precision, long tileFloats, KernelSet? kernels = null,
        bool operandsFromProducers = true, float[]? qkvBias = null) => Forward(qkv, precision, tileFloats, kernels, operandsFromProducers, qkvBias, out _);

    /// <summary>
    /// As the other overload; in bf16 with operands from their producers <paramref name="o16"/> gets o's bf16 copy the
    /// forward writes, else null. A sampling forward (<paramref name="forBackward"/> false) may leave o's stale values.
    /// </summary>
    private (float[] O, float[] Lse) Forward(float[] qkv, DevicePrecision precision, long tileFloats, KernelSet? kernels, bool operandsFromProducers,
        float[]? qkvBias, out ushort[]? o16, bool forBackward = true)
    {
        using var gemm = new IlgpuGemm(device.Accelerator);
        using var products = new AttentionProducts(kernels ?? device.Kernels, gemm, precision, tileFloats, operandsFromProducers);
        using var dqkv = device.Upload(qkv);
        using var bias = qkvBias is null ? null : device.Upload(qkvBias);
        using var o = device.Upload(KernelData.Uniform(Batch * Tokens * Dim, 95)); // stale values the forward must overwrite
        using var lse = device.Upload(KernelData.Uniform(Batch * Heads * Tokens, 96));
        bool copy = precision == DevicePrecision.Bf16 && operandsFromProducers;
        using var copy16 = device.Accelerator.Allocate1D<ushort>(copy ? Batch * Tokens * Dim : 0);
        products.FullForward(dqkv.View, bias?.View ?? default, o.View, lse.View, Geometry, o16: copy16.View, forBackward: forBackward);
        device.Accelerator.Synchronize();
        o16 = copy ? copy16.GetAsArray1D() : null;
        return (device.Download(o), device.Download(lse));
    }

    /// <summary>A CPU layer after a forward and backward of random weights and inputs: its saved tensors and its dqkv.</summary>
    private static FullAttention CpuLayer(ulong seed)
    {
        var attention = new FullAttention("a.", Dim, Heads);
        CpuAttentionLayers.Run(attention, Batch, Tokens, Dim, seed);
        return attention;
    }

    private float[] Backward(FullAttention attention, DevicePrecision precision, long tileFloats, KernelSet? kernels = null,
        bool operandsFromProducers = true) => Backward(attention, precision, tileFloats, kernels, operandsFromProducers, out _);

    /// <summary>
    /// As the other overload; <paramref name="dqkv16"/> gets the bf16 copy of dqkv the backward writes when its producers
    /// write operands. <paramref name="qkv"/> (with <paramref name="qkvBias"/>, added by the moves) replaces the layer's saved qkv when given.
    /// </summary>
    private float[] Backward(FullAttention attention, DevicePrecision precision, long tileFloats, KernelSet? kernels, bool operandsFromProducers,
        out ushort[] dqkv16, float[]? qkv = null, float[]? qkvBias = null, ushort[]? keptP = null)
    {
        using var gemm = new IlgpuGemm(device.Accelerator);
        using var products = new AttentionProducts(kernels ?? device.Kernels, gemm, precision, tileFloats, operandsFromProducers);
        using var bias = qkvBias is null ? null : device.Upload(qkvBias);
        using var dQkv = device.Upload(qkv ?? attention.SavedQkv.Span.ToArray());
        using var o = device.Upload(attention.SavedHeadOutputs.Span.ToArray());
        using var dO = device.Upload(attention.HeadOutputGradient.Span.ToArray());
        // With a kept P the backward must not read lse: give it garbage there.
        using var lse = device.Upload(keptP is null ? attention.SavedLogSumExp.Span.ToArray() : KernelData.Uniform(Batch * Heads * Tokens, 113, -50f, 50f));
        using var p16 = keptP is null ? null : device.Accelerator.Allocate1D(keptP);
        using var delta = device.Accelerator.Allocate1D<float>(Batch * Heads * Tokens);
        using var dqkv = device.Upload(KernelData.Uniform(Batch * Tokens * 3 * Dim, 97)); // overwritten, not added to
        using var halves = device.Accelerator.Allocate1D<ushort>(Batch * Tokens * 3 * Dim);
        halves.MemSetToZero();
        products.FullBackward(dQkv.View, bias?.View ?? default, o.View, dO.View, lse.View, delta.View, dqkv.View, Geometry, halves.View,
            probabilities16: p16 is null ? default : p16.View);
        var result = device.Download(dqkv);
        dqkv16 = halves.GetAsArray1D();
        return result;
    }

    private static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

    private static void AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs((double)actual[i] - expected[i]) <= tolerance * Math.Max(1, Math.Abs((double)expected[i]))))
                Assert.Fail($"{what} element {i}: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tolerance} of max(1, |expected|))");
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class AttentionProductsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : AttentionProductsTests(device);
