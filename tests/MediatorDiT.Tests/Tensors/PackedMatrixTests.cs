using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Tensors;

/// <summary>
/// Products with op(B) packed once (<see cref="PackedMatrix"/>) equal the managed kernel's unpacked products
/// bit for bit (same micro-kernel, k blocking and order), on both kernel widths, 1 and 2 threads, tails in
/// every dimension and more than one k block; short products, which the unpacked path runs without
/// packing, are held to the reference product instead.
/// </summary>
public class PackedMatrixTests
{
    private static float[] Random(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    private static unsafe float[] Unpacked(bool ta, bool tb, int m, int n, int k, float[] a, float[] b, float[] c0, float beta,
        int threads, bool v256)
    {
        var c = (float[])c0.Clone();
        fixed (float* pa = a, pb = b, pc = c)
            ManagedGemm.Sgemm(ta, tb, m, n, k, 0.75f, pa, ta ? m : k, pb, tb ? k : n, beta, pc, n, threads, v256);
        return c;
    }

    private static unsafe float[] Packed(bool ta, bool tb, int m, int n, int k, float[] a, float[] b, float[] c0, float beta,
        int threads, bool v256)
    {
        int nr = ManagedGemm.SliverWidth(v256);
        var buffer = new float[(long)k * ((n + nr - 1) / nr * nr) + 16];
        var c = (float[])c0.Clone();
        fixed (float* pa = a, pb = b, pc = c, pbuf = buffer)
        {
            ManagedGemm.PackWholeB(tb, n, k, pb, tb ? k : n, pbuf, threads, v256);
            ManagedGemm.SgemmPackedB(ta, m, n, k, 0.75f, pa, ta ? m : k, pbuf, beta, pc, n, threads, v256);
        }
        return c;
    }

    public static TheoryData<bool, bool> Transposes => new() { { false, false }, { false, true }, { true, false }, { true, true } };

    [Theory]
    [MemberData(nameof(Transposes))]
    public void PackedOnce_EqualsUnpackedProduct_BitForBit(bool ta, bool tb)
    {
        // m > 8 so the unpacked product packs too; n tails of 1..31 columns; k = 800 is 3 blocks of 267.
        foreach (var (m, n, k) in new[] { (9, 48, 384), (40, 72, 800), (130, 257, 17), (301, 97, 170), (33, 65, 17), (128, 1536, 384) })
        {
            var rng = new Random(m * 31 + n);
            float[] a = Random(rng, m * k), b = Random(rng, k * n), c0 = Random(rng, m * n);
            foreach (bool v256 in new[] { false, true })
            foreach (float beta in new[] { 0f, 1f, 0.5f })
            {
                var expected = Unpacked(ta, tb, m, n, k, a, b, c0, beta, 1, v256);
                Assert.Equal(expected, Packed(ta, tb, m, n, k, a, b, c0, beta, 1, v256));
                Assert.Equal(expected, Packed(ta, tb, m, n, k, a, b, c0, beta, 2, v256));
            }
        }
    }

    [Fact]
    public void ShortProducts_MatchReference()
    {
        var rng = new Random(5);
        foreach (var (m, n, k) in new[] { (1, 40, 9), (5, 33, 400), (8, 1, 7) })
        {
            float[] a = Random(rng, m * k), b = Random(rng, n * k), c0 = Random(rng, m * n);
            var expected = (float[])c0.Clone();
            ReferenceGemm.Sgemm(false, true, m, n, k, 0.75f, a, k, b, k, 1f, expected, n);
            var actual = Packed(false, true, m, n, k, a, b, c0, 1f, 1, false);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5f * (k + 1), $"{m}x{n}x{k} element {i}: {actual[i]} vs {expected[i]}");
        }
    }

    [Fact]
    public void LinearWithPackedWeight_EqualsPlainLinear()
    {
        // The MLP's use: W (out, in) as stored, products on row blocks of a larger input.
        const int rows = 200, inF = 70, outF = 90;
        var rng = new Random(9);
        float[] x = Random(rng, rows * inF), w = Random(rng, outF * inF), bias = Random(rng, outF);
        var plain = new float[rows * outF];
        Linear.Forward(x, w, bias, plain, rows, inF, outF);
        var packed = new PackedMatrix();
        bool didPack = Linear.PackWeight(packed, w, inF, outF, 64);
        Assert.Equal(didPack, packed.IsPacked);
        var blocked = new float[rows * outF];
        foreach (var (r0, r1) in new[] { (0, 64), (64, 128), (128, 192), (192, 200) })
            Linear.Forward(x.AsSpan(r0 * inF, (r1 - r0) * inF), packed, w, bias, blocked.AsSpan(r0 * outF, (r1 - r0) * outF), r1 - r0, inF, outF);
        for (int i = 0; i < plain.Length; i++)
            Assert.True(Math.Abs(plain[i] - blocked[i]) <= 1e-5f * (inF + 1), $"element {i}: {blocked[i]} vs {plain[i]}");
        if (didPack)
        {
            // Full-width blocks of more than 8 rows take the same kernel either way: identical.
            for (int i = 0; i < 192 * outF; i++) Assert.Equal(plain[i], blocked[i]);
        }
    }

    [Fact]
    public void UnpackedOrMismatchedOperand_FallsBackToThePlainProduct()
    {
        const int m = 20, n = 30, k = 40;
        var rng = new Random(3);
        float[] a = Random(rng, m * k), b = Random(rng, n * k), other = Random(rng, (n + 1) * k);
        var expected = new float[m * n];
        Gemm.Sgemm(false, true, m, n, k, 1f, a, k, b, k, 0f, expected, n);
        var never = new PackedMatrix();
        var c = new float[m * n];
        Gemm.Sgemm(false, true, m, n, k, 1f, a, k, never, b, k, 0f, c, n);
        Assert.Equal(expected, c);
        // Packed for a different operand shape (n + 1 columns): ignored, b is used.
        var wrong = new PackedMatrix();
        Gemm.TryPack(wrong, true, n + 1, k, other, k, m);
        Array.Clear(c);
        Gemm.Sgemm(false, true, m, n, k, 1f, a, k, wrong, b, k, 0f, c, n);
        Assert.Equal(expected, c);
    }

    [Fact]
    public void OperandPackedTransposed_IsNotUsedForAnUntransposedProduct()
    {
        // Big enough for the managed kernel, so the packing really happens (skipped where it would not).
        const int m = 40, n = 64, k = 64;
        var rng = new Random(4);
        float[] a = Random(rng, m * k), bT = Random(rng, n * k), b = Random(rng, k * n);
        var packed = new PackedMatrix();
        if (!Gemm.TryPack(packed, true, n, k, bT, k, m)) return;
        Assert.True(packed.IsPacked);
        var expected = new float[m * n];
        Gemm.Sgemm(false, false, m, n, k, 1f, a, k, b, n, 0f, expected, n);
        var c = new float[m * n];
        Gemm.Sgemm(false, false, m, n, k, 1f, a, k, packed, b, n, 0f, c, n);
        Assert.Equal(expected, c);
    }
}
