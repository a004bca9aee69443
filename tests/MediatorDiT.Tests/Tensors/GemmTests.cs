using System.Runtime.Intrinsics;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Tensors;

/// <summary>
/// Fast kernels against <see cref="ReferenceGemm"/> (double accumulation). Error bound per element:
/// |x - ref| &lt;= 1e-5 * (|alpha| sum_p |a_ip b_pj| + |beta c_ij|), the float32 accumulation scale.
/// </summary>
public class GemmTests
{
    internal sealed record Case(bool TransA, bool TransB, int M, int N, int K, float Alpha, float Beta, int Pad, int Seed)
    {
        public int Lda => (TransA ? M : K) + Pad;
        public int Ldb => (TransB ? K : N) + Pad;
        public int Ldc => N + 2 * Pad;
        public int ALen => (TransA ? K : M) * Lda;
        public int BLen => (TransB ? N : K) * Ldb;
        public int CLen => M * Ldc;
        public override string ToString() => $"{(TransA ? "T" : "N")}{(TransB ? "T" : "N")} {M}x{N}x{K} alpha {Alpha} beta {Beta} pad {Pad}";
    }

    internal sealed class Data
    {
        public required float[] A, B, C0;
        public required Case Case;

        public static Data Make(Case cs, bool nanC = false)
        {
            var rng = new Random(cs.Seed);
            return new Data
            {
                Case = cs,
                A = Random(rng, cs.ALen),
                B = Random(rng, cs.BLen),
                C0 = nanC ? Enumerable.Repeat(float.NaN, cs.CLen).ToArray() : Random(rng, cs.CLen),
            };
        }

        public float[] Run(Action<Case, float[], float[], float[]> gemm)
        {
            var c = (float[])C0.Clone();
            gemm(Case, A, B, c);
            return c;
        }
    }

    private static float[] Random(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    private static void Reference(Case cs, float[] a, float[] b, float[] c) =>
        ReferenceGemm.Sgemm(cs.TransA, cs.TransB, cs.M, cs.N, cs.K, cs.Alpha, a, cs.Lda, b, cs.Ldb, cs.Beta, c, cs.Ldc);

    internal static Action<Case, float[], float[], float[]> Via(GemmBackend backend, int threads) => (cs, a, b, c) =>
        Gemm.Sgemm(backend, threads, cs.TransA, cs.TransB, cs.M, cs.N, cs.K, cs.Alpha, a, cs.Lda, b, cs.Ldb, cs.Beta, c, cs.Ldc);

    internal static unsafe Action<Case, float[], float[], float[]> Managed(int threads, bool vector256) => (cs, a, b, c) =>
    {
        fixed (float* pa = a, pb = b, pc = c)
            ManagedGemm.Sgemm(cs.TransA, cs.TransB, cs.M, cs.N, cs.K, cs.Alpha, pa, cs.Lda, pb, cs.Ldb, cs.Beta, pc, cs.Ldc,
                threads, vector256);
    };

    /// <summary>Checks every element of C (and that padding between rows is untouched).</summary>
    internal static void AssertClose(Data d, float[] actual, string what)
    {
        var cs = d.Case;
        float[] expected = d.Run(Reference);
        // Magnitude bound: the same product on absolute values.
        var absA = d.A.Select(Math.Abs).ToArray();
        var absB = d.B.Select(Math.Abs).ToArray();
        var scale = d.C0.Select(v => float.IsNaN(v) ? 0f : Math.Abs(v)).ToArray();
        ReferenceGemm.Sgemm(cs.TransA, cs.TransB, cs.M, cs.N, cs.K, Math.Abs(cs.Alpha), absA, cs.Lda, absB, cs.Ldb,
            Math.Abs(cs.Beta), scale, cs.Ldc);
        for (int i = 0; i < cs.M; i++)
        {
            for (int j = 0; j < cs.Ldc; j++)
            {
                int idx = i * cs.Ldc + j;
                if (j >= cs.N)
                {
                    Assert.True(d.C0[idx].Equals(actual[idx]), $"{what} {cs}: padding C[{i},{j}] was written");
                    continue;
                }
                double tol = 1e-5 * scale[idx] + 1e-30;
                Assert.False(float.IsNaN(actual[idx]), $"{what} {cs}: C[{i},{j}] is NaN");
                Assert.True(Math.Abs(actual[idx] - expected[idx]) <= tol,
                    $"{what} {cs}: C[{i},{j}] = {actual[idx]}, reference {expected[idx]}, tolerance {tol}");
            }
        }
    }

    private static readonly int[] Sizes = [1, 3, 7, 17, 33, 65, 130, 257];

    /// <summary>Each size in each dimension, mixed with different partners, plus a few cubes.</summary>
    public static IEnumerable<(int M, int N, int K)> Shapes()
    {
        for (int i = 0; i < Sizes.Length; i++)
        {
            yield return (Sizes[i], Sizes[(i + 3) % 8], Sizes[(i + 5) % 8]);
            yield return (Sizes[(i + 6) % 8], Sizes[i], Sizes[(i + 1) % 8]);
        }
        foreach (int s in new[] { 1, 7, 33, 65 }) yield return (s, s, s);
        yield return (130, 257, 17);
        // Column tails served by the half-width kernel (48 = 32 + 16, 72 = 32 + 32 + 8), and k blocks
        // (800 = 3 x 267).
        yield return (9, 48, 384);
        yield return (40, 72, 800);
        // Short products (unpacked path) with long k and wide n.
        yield return (4, 300, 70);
        yield return (8, 1, 600);
    }

    public static TheoryData<bool, bool> Transposes => new() { { false, false }, { false, true }, { true, false }, { true, true } };

    [Theory]
    [MemberData(nameof(Transposes))]
    public void Managed_MatchesReference_OddSizes_StridesAlphaBeta(bool transA, bool transB)
    {
        float[] betas = [0f, 1f, 0.5f];
        int n = 0;
        foreach (var (m, nn, k) in Shapes())
        {
            var cs = new Case(transA, transB, m, nn, k, 1.25f, betas[n % 3], Pad: n % 2 == 0 ? 0 : 5, Seed: n);
            var d = Data.Make(cs);
            AssertClose(d, d.Run(Managed(1, vector256: false)), "managed");
            n++;
        }
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void Vector256_And_Vector512_Paths_Agree(bool transA, bool transB)
    {
        // Without AVX-512 both calls take the 256-bit path; the reference check still covers it.
        bool has512 = Vector512.IsHardwareAccelerated;
        foreach (var (m, n, k) in new[] { (7, 33, 17), (65, 130, 33), (130, 17, 257), (6, 16, 1) })
        {
            var d = Data.Make(new Case(transA, transB, m, n, k, 0.75f, 0.5f, Pad: 3, Seed: m + n + k));
            float[] c256 = d.Run(Managed(1, vector256: true));
            AssertClose(d, c256, "vector256");
            float[] c512 = d.Run(Managed(1, vector256: false));
            AssertClose(d, c512, has512 ? "vector512" : "default path");
            // Same k order per element in both kernels: results agree to rounding of the final scale-add.
            for (int i = 0; i < c256.Length; i++)
                Assert.True(Math.Abs(c256[i] - c512[i]) <= 1e-5f * (1 + Math.Abs(c512[i])), $"{d.Case}: element {i}");
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void BetaZero_OverwritesNaN(bool transA, bool transB)
    {
        var d = Data.Make(new Case(transA, transB, 33, 65, 17, 2f, 0f, Pad: 1, Seed: 3), nanC: true);
        AssertClose(d, d.Run(Managed(1, false)), "managed 512");
        AssertClose(d, d.Run(Managed(1, true)), "managed 256");
        foreach (var backend in Enum.GetValues<GemmBackend>())
            AssertClose(d, d.Run(Via(backend, 2)), backend.ToString());
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(1f)]
    [InlineData(0.5f)]
    public void KZero_ScalesC(float beta)
    {
        foreach (bool nan in new[] { false, true })
        {
            if (nan && beta != 0) continue;
            var d = Data.Make(new Case(false, true, 5, 9, 0, 1f, beta, Pad: 2, Seed: 11), nanC: nan);
            foreach (var backend in Enum.GetValues<GemmBackend>())
                AssertClose(d, d.Run(Via(backend, 2)), backend.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void OneAndTwoThreads_GiveIdenticalResults(bool transA, bool transB)
    {
        // Above the parallel threshold; split by rows (shared packed B), by columns, and a short
        // product on the unpacked path split by columns.
        foreach (var (m, n, k) in new[] { (301, 97, 170), (70, 610, 120), (5, 2100, 410) })
        {
            Assert.True((long)m * n * k >= ManagedGemm.ParallelMinWork);
            var d = Data.Make(new Case(transA, transB, m, n, k, 1f, 0.5f, Pad: 1, Seed: 5));
            float[] one = d.Run(Managed(1, false)), two = d.Run(Managed(2, false));
            Assert.Equal(one, two);
            if (!transA && !transB) AssertClose(d, two, "managed 2 threads");
        }
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void OpenBlas_MatchesReference_WhenInstalled(bool transA, bool transB)
    {
        if (!Gemm.OpenBlasAvailable) return; // optional system library
        int n = 0;
        foreach (var (m, nn, k) in new[] { (1, 1, 1), (7, 33, 17), (65, 130, 257), (257, 3, 65), (301, 97, 170) })
        {
            var d = Data.Make(new Case(transA, transB, m, nn, k, 1.5f, n % 2 == 0 ? 0.5f : 0f, Pad: 2, Seed: n++));
            AssertClose(d, d.Run(Via(GemmBackend.OpenBlas, 1)), "openblas 1 thread");
            AssertClose(d, d.Run(Via(GemmBackend.OpenBlas, 2)), "openblas 2 threads");
        }
    }

    [Theory]
    [InlineData(GemmBackend.Auto)]
    [InlineData(GemmBackend.Managed)]
    [InlineData(GemmBackend.OpenBlas)]
    [InlineData(GemmBackend.Reference)]
    public void Dispatcher_EachBackend_MatchesReference(GemmBackend backend)
    {
        foreach (var (m, n, k, ta, tb) in new[] { (3, 5, 7, false, false), (64, 64, 64, true, false), (130, 65, 33, false, true), (257, 40, 300, true, true) })
        {
            var d = Data.Make(new Case(ta, tb, m, n, k, 0.5f, 1f, Pad: 1, Seed: m));
            AssertClose(d, d.Run(Via(backend, 1)), $"{backend} 1 thread");
            AssertClose(d, d.Run(Via(backend, 2)), $"{backend} 2 threads");
        }
    }

    [Theory]
    [InlineData(GemmBackend.Managed, 1, 5)]
    [InlineData(GemmBackend.Managed, 2, 5)]
    [InlineData(GemmBackend.Managed, 2, 1)]
    [InlineData(GemmBackend.OpenBlas, 2, 5)]
    [InlineData(GemmBackend.Auto, 2, 24)]
    public void Batched_EqualsLoopOfSingleProducts(GemmBackend backend, int threads, int batch)
    {
        foreach (var (m, n, k, ta, tb) in new[] { (64, 64, 32, false, true), (33, 70, 129, true, false), (200, 150, 100, false, false) })
        {
            int lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 3;
            int strideA = (ta ? k : m) * lda + 5, strideB = (tb ? n : k) * ldb, strideC = m * ldc + 1;
            var rng = new Random(m * n);
            float[] a = Random(rng, strideA * batch), b = Random(rng, strideB * batch), c0 = Random(rng, strideC * batch);
            float[] batched = (float[])c0.Clone(), looped = (float[])c0.Clone();
            Gemm.SgemmBatched(backend, threads, ta, tb, m, n, k, 0.5f, a, lda, strideA, b, ldb, strideB, 0.25f,
                batched, ldc, strideC, batch);
            for (int i = 0; i < batch; i++)
                Gemm.Sgemm(backend, threads, ta, tb, m, n, k, 0.5f, a.AsSpan(i * strideA), lda, b.AsSpan(i * strideB), ldb,
                    0.25f, looped.AsSpan(i * strideC), ldc);
            if (backend == GemmBackend.Managed)
                Assert.Equal(looped, batched); // managed results do not depend on the thread split
            for (int i = 0; i < batch; i++)
            {
                var cs = new Case(ta, tb, m, n, k, 0.5f, 0.25f, Pad: 0, Seed: 0);
                var item = new Data
                {
                    Case = cs,
                    A = Slice(a, i * strideA, (ta ? k : m) * lda, lda, ta ? m : k),
                    B = Slice(b, i * strideB, (tb ? n : k) * ldb, ldb, tb ? k : n),
                    C0 = Slice(c0, i * strideC, m * ldc, ldc, n),
                };
                var got = Slice(batched, i * strideC, m * ldc, ldc, n);
                AssertClose(item, got, $"{backend} batch item {i}");
            }
        }
    }

    /// <summary>Copies a strided matrix into a dense one (ld == cols) for the reference check.</summary>
    private static float[] Slice(float[] src, int offset, int len, int ld, int cols)
    {
        int rows = len / ld;
        var dst = new float[rows * cols];
        for (int r = 0; r < rows; r++) Array.Copy(src, offset + r * ld, dst, r * cols, cols);
        return dst;
    }

    [Fact]
    public void AutoRule_PicksManagedForModelShapes_AndOpenBlasOnlyWhenLoaded()
    {
        var big = Gemm.Choose(false, false, 1024, 1152, 384, 2);
        var tiny = Gemm.Choose(false, false, 16, 16, 16, 1);
        if (!Gemm.OpenBlasAvailable)
        {
            Assert.Equal(GemmBackend.Managed, big);
            Assert.Equal(GemmBackend.Managed, tiny);
            return;
        }
        Assert.Equal(GemmBackend.OpenBlas, tiny);
        Assert.Equal(ManagedGemm.Uses512 ? GemmBackend.Managed : GemmBackend.OpenBlas, big);
        Assert.Equal(GemmBackend.Managed, Gemm.Choose(false, false, 1, 1152, 1152, 1));
        // Long, wide products over a short k (a hidden-96 network's qkv, MLP up, MLP-down input gradient) run
        // managed at either width; narrow or long-k ones keep the 256-bit rule.
        Assert.Equal(GemmBackend.Managed, Gemm.Choose(false, true, 16384, 288, 96, 1));
        Assert.Equal(GemmBackend.Managed, Gemm.Choose(false, false, 16384, 384, 96, 1));
        Assert.Equal(ManagedGemm.Uses512 ? GemmBackend.Managed : GemmBackend.OpenBlas, Gemm.Choose(false, true, 256, 96, 384, 1));
        Assert.Equal(ManagedGemm.Uses512 ? GemmBackend.Managed : GemmBackend.OpenBlas, Gemm.Choose(true, false, 384, 96, 16384, 1));
    }

    [Fact]
    public void Batched_ThreeBigItemsOnTwoThreads_AndOverlappingOutputs()
    {
        // 3 items on 2 threads run one after another, each split over both threads; results as looping.
        int m = 140, n = 150, k = 210, batch = 3;
        var rng = new Random(9);
        float[] a = Random(rng, m * k * batch), b = Random(rng, k * n * batch), c = new float[m * n * batch];
        float[] loop = new float[m * n * batch];
        Gemm.SgemmBatched(GemmBackend.Managed, 2, false, false, m, n, k, 1f, a, k, m * k, b, n, k * n, 0f, c, n, m * n, batch);
        for (int i = 0; i < batch; i++)
            Gemm.Sgemm(GemmBackend.Managed, 1, false, false, m, n, k, 1f, a.AsSpan(i * m * k), k, b.AsSpan(i * k * n), n,
                0f, loop.AsSpan(i * m * n), n);
        Assert.Equal(loop, c);

        // strideC = 0 accumulates every item into one C (beta = 1): must run in order, never concurrently.
        var acc = new float[m * n];
        Gemm.SgemmBatched(GemmBackend.Managed, 2, false, false, m, n, k, 1f, a, k, m * k, b, n, k * n, 1f, acc, n, 0, batch);
        for (int i = 0; i < acc.Length; i++)
        {
            float expected = loop[i] + loop[m * n + i] + loop[2 * m * n + i];
            Assert.True(Math.Abs(acc[i] - expected) <= 1e-4f * (1 + Math.Abs(expected)), $"element {i}");
        }
    }

    [Fact]
    public void ProductsInsideParallelLoopBodies_MatchSerialResults()
    {
        // Kernels called from batch x heads loops stay on their thread; results must not change.
        const int items = 4, m = 160, n = 96, k = 300;
        var rng = new Random(4);
        float[] a = Random(rng, items * m * k), b = Random(rng, k * n);
        float[] inside = new float[items * m * n], serial = new float[items * m * n];
        ParallelLoop.For(items, i =>
            Gemm.Sgemm(GemmBackend.Managed, 2, false, false, m, n, k, 1f, a.AsSpan(i * m * k), k, b, n, 0f,
                inside.AsSpan(i * m * n), n));
        for (int i = 0; i < items; i++)
            Gemm.Sgemm(GemmBackend.Managed, 2, false, false, m, n, k, 1f, a.AsSpan(i * m * k), k, b, n, 0f,
                serial.AsSpan(i * m * n), n);
        Assert.Equal(serial, inside);
    }

    [Fact]
    public void TooShortBuffers_Throw()
    {
        var a = new float[10 * 10];
        var b = new float[10 * 10];
        var c = new float[10 * 10];
        Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 10, 10, 11, 1f, a, 11, b, 10, 0f, c, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, false, 10, 10, 10, 1f, a, 9, b, 10, 0f, c, 10));
        Assert.Throws<ArgumentException>(() => Gemm.SgemmBatched(false, false, 10, 10, 10, 1f, a, 10, 100, b, 10, 100, 0f, c, 10, 100, 2));
    }
}
