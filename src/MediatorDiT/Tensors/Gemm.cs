namespace MediatorDiT.Tensors;

/// <summary>
/// Row-major single-precision matrix product, the one entry point every layer uses:
/// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C[m,n], op(X) = X or X^T.
/// With transA the stored A is [k, m] (lda >= m), otherwise [m, k] (lda >= k); likewise for B.
/// beta == 0 overwrites C (NaN in C does not propagate).
/// </summary>
internal static unsafe class Gemm
{
    /// <summary>The implementation <see cref="Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/> runs in the current <see cref="ComputeContext"/>.</summary>
    public static GemmBackend Backend => ComputeContext.Current.Gemm;

    /// <summary>True when a system OpenBLAS was found and loaded.</summary>
    public static bool OpenBlasAvailable => OpenBlas.Available;



    /// <summary>
    /// C = alpha * op(A) op(B) + beta * C with <see cref="Backend"/> on the current <see cref="ComputeContext"/>'s
    /// threads (products below ~32K multiply-adds, or called from inside a parallel chunk, stay on this thread).
    /// </summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
        => Sgemm(Backend, ComputeContext.Current.Threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>As the public overload, with the backend and thread count given (tests and benchmarks).</summary>
    internal static void Sgemm(GemmBackend backend, int threads, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        Check(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0) return;
        if (backend == GemmBackend.Reference)
        {
            ReferenceGemm.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        fixed (float* pa = a, pb = b, pc = c)
            Run(backend, threads, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    /// <summary>
    /// A batch of independent products; matrix i starts at i*strideA, i*strideB, i*strideC (C blocks
    /// that overlap are computed in order). With batch &gt;= threads the items are spread over the threads,
    /// each item single-threaded, unless a few big items would leave a thread idle (3 items on 2 threads):
    /// then, as for batch &lt; threads, each product is parallelised on its own.
    /// </summary>
    public static void SgemmBatched(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, int strideA, ReadOnlySpan<float> b, int ldb, int strideB,
        float beta, Span<float> c, int ldc, int strideC, int batch)
        => SgemmBatched(Backend, ComputeContext.Current.Threads, transA, transB, m, n, k, alpha, a, lda, strideA,
            b, ldb, strideB, beta, c, ldc, strideC, batch);

    internal static void SgemmBatched(GemmBackend backend, int threads, bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, int strideA, ReadOnlySpan<float> b, int ldb, int strideB,
        float beta, Span<float> c, int ldc, int strideC, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        if (batch == 0 || m == 0 || n == 0) return;
        ArgumentOutOfRangeException.ThrowIfNegative(strideA);
        ArgumentOutOfRangeException.ThrowIfNegative(strideB);
        ArgumentOutOfRangeException.ThrowIfNegative(strideC);
        long extentC = Extent(m, n, ldc);
        Check(transA, transB, m, n, k, a.Length - (long)(batch - 1) * strideA, lda,
            b.Length - (long)(batch - 1) * strideB, ldb, c.Length - (long)(batch - 1) * strideC, ldc);
        if (backend == GemmBackend.Reference)
        {
            for (int i = 0; i < batch; i++)
                ReferenceGemm.Sgemm(transA, transB, m, n, k, alpha, a[(i * strideA)..], lda, b[(i * strideB)..], ldb,
                    beta, c[(i * strideC)..], ldc);
            return;
        }
        // Items whose C blocks overlap must run in order.
        bool disjoint = batch == 1 || strideC >= extentC;
        long work = (long)m * n * k;
        fixed (float* pa = a, pb = b, pc = c)
        {
            bool overItems = batch >= threads && (batch % threads == 0 || batch >= 4 * threads || work < ManagedGemm.ParallelMinWork);
            if (threads > 1 && overItems && disjoint && !ManagedGemm.InParallelRegion && work * batch >= ManagedGemm.ParallelMinWork)
            {
                nint ia = (nint)pa, ib = (nint)pb, ic = (nint)pc;
                // One chunk per item: items are claimed in turn, each runs single-threaded where it lands.
                ParallelChunks.Run(threads, batch, i =>
                    Run(backend, 1, transA, transB, m, n, k, alpha, (float*)ia + (long)i * strideA, lda,
                        (float*)ib + (long)i * strideB, ldb, beta, (float*)ic + (long)i * strideC, ldc));
            }
            else
            {
                for (int i = 0; i < batch; i++)
                    Run(backend, threads, transA, transB, m, n, k, alpha, pa + (long)i * strideA, lda,
                        pb + (long)i * strideB, ldb, beta, pc + (long)i * strideC, ldc);
            }
        }
    }

    /// <summary>
    /// Packs op(B) (k x n; B stored [n, k] when <paramref name="transB"/>) into <paramref name="packed"/> for
    /// repeated products of about <paramref name="rowsPerProduct"/> rows, when those would run on the managed
    /// kernel (the backend in force, or the Auto rule's choice for that shape); otherwise leaves it unpacked
    /// and returns false, and the packed overload of Sgemm then takes the plain path with <paramref name="b"/>.
    /// </summary>
    internal static bool TryPack(PackedMatrix packed, bool transB, int n, int k, ReadOnlySpan<float> b, int ldb, int rowsPerProduct)
    {
        Check(false, transB, 1, n, k, k, k, b.Length, ldb, n, n); // B only; A and C stand in
        var backend = Backend == GemmBackend.Auto ? Choose(false, transB, rowsPerProduct, n, k, 1) : Backend;
        if (backend != GemmBackend.Managed || n == 0 || k == 0)
        {
            packed.Clear();
            return false;
        }
        bool v256 = ManagedGemm.ForceVector256;
        int nr = ManagedGemm.SliverWidth(v256);
        long floats = (long)k * ((n + nr - 1) / nr * nr);
        float* dst = packed.Prepare(n, k, transB, v256, floats);
        fixed (float* pb = b)
            ManagedGemm.PackWholeB(transB, n, k, pb, ldb, dst, ComputeContext.Current.Threads, v256);
        return true;
    }

    /// <summary>
    /// <see cref="Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>
    /// with op(B) taken from <paramref name="packed"/> when <see cref="TryPack"/> packed this same operand
    /// (n x k, same transpose, current kernel width); bit for bit what the managed kernel gives unpacked. Otherwise the
    /// plain <paramref name="b"/> is used as usual.
    /// </summary>
    internal static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        PackedMatrix packed, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        if (!packed.IsPacked || packed.Columns != n || packed.Depth != k || packed.TransB != transB
            || packed.Vector256 != ManagedGemm.ForceVector256)
        {
            Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        Check(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a, pc = c)
            ManagedGemm.SgemmPackedB(transA, m, n, k, alpha, pa, lda, packed.Pointer, beta, pc, ldc, ComputeContext.Current.Threads, packed.Vector256);
    }

    private static void Run(GemmBackend backend, int threads, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        long work = (long)m * n * k;
        if (work < ManagedGemm.TinyWork) threads = 1;
        if (backend == GemmBackend.Auto) backend = Choose(transA, transB, m, n, k, threads);
        if (backend == GemmBackend.OpenBlas && OpenBlas.Available)
            OpenBlas.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
        else if (backend == GemmBackend.Reference)
            ReferenceGemm.Sgemm(transA, transB, m, n, k, alpha,
                new ReadOnlySpan<float>(a, (int)Extent(transA ? k : m, transA ? m : k, lda)), lda,
                new ReadOnlySpan<float>(b, (int)Extent(transB ? n : k, transB ? k : n, ldb)), ldb,
                beta, new Span<float>(c, (int)Extent(m, n, ldc)), ldc);
        else
            ManagedGemm.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, ManagedGemm.ForceVector256);
    }

    /// <summary>
    /// The Auto rule, from medians measured on the 2-core Zen 5 development VM (GFLOP/s, managed vs
    /// OpenBLAS 0.3.21, 1 thread / 2 threads). The managed AVX-512 kernel is ~1.8x faster on every model
    /// shape (1024x1152x384: 187 vs 104 / 350 vs 195; 1024x384x1536: 181 vs 102 / 357 vs 188;
    /// A^T B 384x1152x1024: 169 vs 105 / 349 vs 201; A B^T 1024x384x1152: 169 vs 101 / 347 vs 188;
    /// 256x256x64 x24: 178 vs 91 / 348 vs 188) and on short products (16x1152x1152: 104 vs 77 / 190 vs 147;
    /// 1x1152x1152: 31 vs 9). OpenBLAS is used where the managed code pays fixed costs or pads lanes:
    /// tiny products, m*n*k &lt; 32K (16^3: 24 vs 18; 30^3: 43 vs 16), which also never use threads;
    /// narrow outputs, n &lt; 16 (1024x8x1152: 60 vs 46 / 115 vs 92);
    /// short A B^T, 3 &lt;= m &lt;= 8 (4x1152x6912: 22 vs 16, memory-bound and close on 2 threads);
    /// and, when only the 256-bit managed kernel can run, everything except GEMV-like products
    /// (1024x1152x384: 93 vs 111), whereas for m &lt;= 2 with B not transposed the managed streaming path
    /// wins at either width (1x1152x1152: 30 vs 9). One exception on 256-bit machines: long, wide products
    /// over a short k (m &gt;= 256, n &gt;= 256, k &lt;= 128, A not transposed), the layers of a hidden-96
    /// network, where the managed 6 x 16 kernel leads (AVX2 Zen 3, one thread, thread CPU time, three runs:
    /// x W^T 16384x288x96 76 vs 68, 256x384x96 84 vs 73, dy W 16384x384x96 80 vs 70; in the
    /// fashion-mnist/shared.json step, five alternating runs: MLP-down backward 146-152 -> 136-137 ms, qkv 56-59
    /// -> 54-55 ms). OpenBLAS keeps the narrow or long-k ones (256x96x384: 69 vs 78, 16384x96x288: 64 vs 71).
    /// Without OpenBLAS everything runs managed.
    /// </summary>
    internal static GemmBackend Choose(bool transA, bool transB, int m, int n, int k, int threads)
    {
        _ = threads;
        if (!OpenBlas.Available) return GemmBackend.Managed;
        if ((long)m * n * k < ManagedGemm.TinyWork) return GemmBackend.OpenBlas;
        if (m <= 2 && !transB) return GemmBackend.Managed;
        if (!ManagedGemm.Uses512)
            return !transA && m >= 256 && n >= 256 && k <= 128 ? GemmBackend.Managed : GemmBackend.OpenBlas;
        if (n < 16) return GemmBackend.OpenBlas;
        if (transB && m >= 3 && m <= ManagedGemm.DirectMaxM) return GemmBackend.OpenBlas;
        return GemmBackend.Managed;
    }

    private static long Extent(int rows, int cols, int ld) => rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;

    private static void Check(bool transA, bool transB, int m, int n, int k, long aLen, int lda, long bLen, int ldb, long cLen, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (lda < (transA ? m : k)) throw new ArgumentOutOfRangeException(nameof(lda), $"lda {lda} is less than {(transA ? "m" : "k")} = {(transA ? m : k)}.");
        if (ldb < (transB ? k : n)) throw new ArgumentOutOfRangeException(nameof(ldb), $"ldb {ldb} is less than {(transB ? "k" : "n")} = {(transB ? k : n)}.");
        if (ldc < n) throw new ArgumentOutOfRangeException(nameof(ldc), $"ldc {ldc} is less than n = {n}.");
        if (m == 0 || n == 0) return;
        if (aLen < Extent(transA ? k : m, transA ? m : k, lda)) throw new ArgumentException($"A holds {aLen} floats, too few for a {(transA ? $"[{k}, {m}]" : $"[{m}, {k}]")} matrix with lda {lda}.", "a");
        if (bLen < Extent(transB ? n : k, transB ? k : n, ldb)) throw new ArgumentException($"B holds {bLen} floats, too few for a {(transB ? $"[{n}, {k}]" : $"[{k}, {n}]")} matrix with ldb {ldb}.", "b");
        if (cLen < Extent(m, n, ldc)) throw new ArgumentException($"C holds {cLen} floats, too few for a [{m}, {n}] matrix with ldc {ldc}.", "c");
    }
}
