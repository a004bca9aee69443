using System.Runtime.InteropServices;

namespace MediatorDiT.Tensors;

/// <summary>
/// Optional system OpenBLAS, bound at run time so the library works without it (managed kernels then).
/// Only <c>cblas_sgemm</c> is used, through an unmanaged function pointer (blittable arguments, no marshalling).
/// Threading: OpenBLAS is pinned to one thread at load and <see cref="Sgemm"/> splits a product into row
/// (or column) blocks over our own threads. Measured on the 2-core VM, its own 2-thread mode was no better
/// on the model's shapes (1024x1152x384: 191 vs 153-189 GFLOP/s for the split, within noise) and worse on
/// short ones (4x6912x1152: 19 vs 38); a one-threaded library also runs safely inside our parallel loops
/// (batched products, attention heads) without oversubscribing the cores, and its idle workers never spin.
/// MDIT_NO_OPENBLAS=1 skips loading it.
/// </summary>
internal static unsafe class OpenBlas
{
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    // LP64 interface: 32-bit ints.
    private static readonly delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> s_sgemm;
    // ILP64 interface (libopenblas64_, symbols suffixed 64_): 64-bit ints.
    private static readonly delegate* unmanaged<int, int, int, long, long, long, float, float*, long, float*, long, float, float*, long, void> s_sgemm64;
    private static readonly delegate* unmanaged<int, void> s_setThreads;
    private static readonly delegate* unmanaged<int> s_getThreads;

    /// <summary>True when a BLAS exporting cblas_sgemm was loaded.</summary>
    public static bool Available => s_sgemm != null || s_sgemm64 != null;

    /// <summary>The file name that was loaded, or null.</summary>
    public static string? LibraryName { get; }

    /// <summary>True when the thread count of the loaded library can be controlled (OpenBLAS proper).</summary>
    public static bool CanSetThreads => s_setThreads != null;

    // Candidate names in order of preference; the generic libblas.so.3 comes last and is accepted only if it
    // exports the CBLAS entry point (Debian's openblas-pthread alternative does, netlib's does not).
    private static readonly string[] Names =
    [
        "libopenblas.so.0", "libopenblas.so", "libopenblas64_.so.0", "libopenblas64_.so",
        "libopenblas.dylib", "libopenblas.dll", "openblas.dll", "libblas.so.3",
    ];

    static OpenBlas()
    {
        if (Environment.GetEnvironmentVariable("MDIT_NO_OPENBLAS") == "1") return;
        foreach (string name in Names)
        {
            if (!NativeLibrary.TryLoad(name, out nint lib))
                continue;
            bool ilp64 = name.Contains("64_");
            string suffix = ilp64 ? "64_" : "";
            if (!NativeLibrary.TryGetExport(lib, "cblas_sgemm" + suffix, out nint fn))
            {
                NativeLibrary.Free(lib);
                continue;
            }
            if (ilp64)
                s_sgemm64 = (delegate* unmanaged<int, int, int, long, long, long, float, float*, long, float*, long, float, float*, long, void>)fn;
            else
                s_sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)fn;
            if (NativeLibrary.TryGetExport(lib, "openblas_set_num_threads" + suffix, out nint set))
                s_setThreads = (delegate* unmanaged<int, void>)set;
            if (NativeLibrary.TryGetExport(lib, "openblas_get_num_threads" + suffix, out nint get))
                s_getThreads = (delegate* unmanaged<int>)get;
            LibraryName = name;
            SetThreads(1);
            return;
        }
    }

    /// <summary>OpenBLAS's own thread count (1 after load); -1 when the library does not say.</summary>
    public static int GetThreads() => s_getThreads != null ? s_getThreads() : -1;

    /// <summary>Sets OpenBLAS's own thread count. Not safe while products are running on other threads.</summary>
    public static void SetThreads(int threads)
    {
        if (s_setThreads != null) s_setThreads(Math.Max(1, threads));
    }

    /// <summary>One cblas_sgemm call (row-major). Caller checks shapes, pins memory, handles k == 0.</summary>
    public static void Call(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        int ta = transA ? Trans : NoTrans, tb = transB ? Trans : NoTrans;
        if (s_sgemm != null)
            s_sgemm(RowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else if (s_sgemm64 != null)
            s_sgemm64(RowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else
            throw new InvalidOperationException("OpenBLAS is not loaded.");
    }

    /// <summary>
    /// C = alpha op(A) op(B) + beta C as row (or column) blocks of C, each block one single-threaded OpenBLAS
    /// call, spread over <paramref name="threads"/> cores; A^T B over a long k with a small output goes in k
    /// parts instead (<see cref="SgemmSplitK"/>). OpenBLAS's per-element sums depend on the shape of
    /// the call (a row computed in a 64-row call differs in the last bits from the same row in a 256-row call),
    /// so the blocks come from the product's shape alone and 1 or N threads give the same bits.
    /// </summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        if (m <= 0 || n <= 0) return;
        if (k <= 0 || alpha == 0)
        {
            ManagedGemm.ScaleC(m, n, beta, c, ldc);
            return;
        }
        // Blocks of whole 16-row/column groups so OpenBLAS's own tiles stay full, at least 128 rows each so
        // each call's packing of the other operand stays a small share of its work.
        bool splitM = m >= n;
        int units = ((splitM ? m : n) + 15) / 16;
        int chunks = ManagedGemm.WorthThreads(m, n, k) ? ParallelLoop.FixedPartsFor(units / 8) : 1;
        if (chunks <= 1)
        {
            Call(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        if (transA && !transB && k >= LongKMin && k >= 16L * Math.Max(m, n))
        {
            SgemmSplitK(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
            return;
        }
        nint pa = (nint)a, pb = (nint)b, pc = (nint)c;
        // Serial on one thread or inside a parallel region (same blocks, so the same bits).
        ParallelChunks.Run(threads, chunks, ci =>
        {
            int lo = (int)((long)units * ci / chunks) * 16;
            int hi = Math.Min(splitM ? m : n, (int)((long)units * (ci + 1) / chunks) * 16);
            if (hi <= lo) return;
            float* A = (float*)pa, B = (float*)pb, C = (float*)pc;
            if (splitM)
                Call(transA, transB, hi - lo, n, k, alpha, transA ? A + lo : A + (long)lo * lda, lda,
                    B, ldb, beta, C + (long)lo * ldc, ldc);
            else
                Call(transA, transB, m, hi - lo, k, alpha, A, lda,
                    transB ? B + (long)lo * ldb : B + lo, ldb, beta, C + lo, ldc);
        });
    }

    /// <summary>Shortest k that <see cref="SgemmSplitK"/> takes (two parts of 2,048).</summary>
    internal const int LongKMin = 4096;

    /// <summary>
    /// A^T B over a long k with a small output (a layer's weight gradient: dy^T x summed over a batch's rows, e.g.
    /// 384 x 96 over 16,384 rows). Cut by rows or columns of C, every call would pack the whole of the other
    /// operand again (three 128-row calls of 384 x 96 x 16384 ran at 65 GFLOP/s against 73 for one call, Zen 3,
    /// one thread). Cut along k instead, each part packs only its own slice of both operands: at most 8 parts of
    /// at least 2,048, each one OpenBLAS call into its own partial product, parts spread over the threads, then
    /// C = beta C + partial 0 + partial 1 + ... added in part order on the calling thread. The parts come from k
    /// alone, so 1 and N threads give the same bits (72-77 GFLOP/s for the recipe's weight gradients, one thread).
    /// </summary>
    private static void SgemmSplitK(int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta,
        float* c, int ldc, int threads)
    {
        int parts = ParallelLoop.FixedPartsFor(k / 2048);
        int size = m * n;
        float[] partial = ScratchBuffers.Get(4, parts * size);
        fixed (float* pp = partial)
        {
            nint pa = (nint)a, pb = (nint)b, pr = (nint)pp;
            ParallelChunks.Run(threads, parts, p =>
            {
                int k0 = (int)((long)k * p / parts), k1 = (int)((long)k * (p + 1) / parts);
                Call(true, false, m, n, k1 - k0, alpha, (float*)pa + (long)k0 * lda, lda, (float*)pb + (long)k0 * ldb, ldb,
                    0f, (float*)pr + (long)p * size, n);
            });
            for (int i = 0; i < m; i++)
            {
                var row = new Span<float>(c + (long)i * ldc, n);
                var first = new ReadOnlySpan<float>(pp + (long)i * n, n);
                if (beta == 0f) first.CopyTo(row);
                else
                {
                    if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
                    System.Numerics.Tensors.TensorPrimitives.Add(row, first, row);
                }
                for (int p = 1; p < parts; p++)
                    System.Numerics.Tensors.TensorPrimitives.Add(row, new ReadOnlySpan<float>(pp + (long)p * size + (long)i * n, n), row);
            }
        }
    }
}
