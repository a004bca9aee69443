using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MediatorDiT.Tensors;

/// <summary>
/// Packed, register-blocked SGEMM in the BLIS style. Per k block (at most KC deep) the rows of op(A) are
/// packed into MR-row slivers ([kc][MR], one stays in L1 while it is used) and op(B) into NR-column slivers
/// ([kc][NR], an NC-wide block stays in L2). The micro-kernel keeps an MR x NR block of C in registers:
/// 8 x 32 (16 zmm accumulators, plus an 8 x 16 kernel for narrow column tails) with AVX-512, 6 x 16
/// (12 ymm) otherwise. Transposes are absorbed by the packing, so one kernel serves all four cases.
/// Short (m &lt;= 8) and tiny products skip packing (<see cref="Direct"/>).
/// Threads: a row split shares one packed copy of B between the threads; short, wide products split
/// columns instead. Per element the k order depends only on the k blocking, so results are identical
/// for any thread count.
/// </summary>
[SkipLocalsInit]
internal static unsafe class ManagedGemm
{
    /// <summary>Use the 256-bit kernel even where AVX-512 is available (tests compare both paths).</summary>
    internal static bool ForceVector256 => ComputeContext.Current.Vector256Only;

    /// <summary>True when the 512-bit kernel is used by default on this machine.</summary>
    internal static bool Uses512 => Vector512.IsHardwareAccelerated && !ForceVector256;

    // k block: an 8 x 384 A sliver (12 KB) stays in L1 while it meets every B sliver of a 384 x 384 block
    // (576 KB, L2). k is split into equal blocks (k = 1024 -> 3 x 342) so no block is a short remainder.
    internal static int KcMax = 384;
    // Columns of packed B swept per A sliver (the L2-resident block).
    internal static int NcMax = 384;
    // Rows of A packed at once; bounds the per-thread A buffer (MC x KC floats = 1.5 MB).
    internal static int McMax = 1024;
    // Packed B is built for a whole panel of columns before the row chunks start; the panel is capped
    // at ~16 MB (k x n floats) so huge products stream through the 32 MB L3 in pieces.
    internal static long PanelMaxFloats = 4L << 20;
    // Below this m*n*k a product runs on the calling thread (handing work to a helper costs tens of us).
    internal static long ParallelMinWork = 1L << 22;

    /// <summary>
    /// True when a product is big enough to split over threads. A short product (m &lt; 16) is counted as
    /// 16 rows: it reads all of B however few rows it has, so its time follows n*k (the adaLN modulation,
    /// 4 x 2304 x 384, streams a 3.5 MB weight and ran serially under the plain m*n*k rule).
    /// </summary>
    internal static bool WorthThreads(int m, int n, int k) => (long)Math.Max(m, 16) * n * k >= ParallelMinWork;
    // Row (or column) chunks per thread; several per thread let a late-waking thread join without
    // leaving the other idle at the end.
    internal static int ChunksPerThread = 4;

    private struct Job
    {
        public float* A, B, C;
        public int M, N, K, Lda, Ldb, Ldc;
        public bool TransA, TransB;
        public float Alpha, Beta;
        public int MR, NR;
        public delegate*<int, float*, float*, float*, nint, float, float, void> Kernel;
        // Half-width kernel for column tails of at most NR / 2 (n = 72 -> 32 + 32 + 16), or null.
        public delegate*<int, float*, float*, float*, nint, float, float, void> HalfKernel;
        // Current B panel: columns [N0, N0 + Nc) packed into PackedB as k blocks of [slivers][kc][NR].
        public float* PackedB;
        public int N0, Nc, NcPad, Kcn;
    }

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    /// <summary>True on a thread that is running one chunk of a parallel loop (nested products stay serial).</summary>
    internal static bool InParallelRegion => ParallelChunks.InRegion;

    /// <summary>
    /// C = alpha * op(A) op(B) + beta * C on raw pointers (row-major, caller has checked bounds and pinned).
    /// threads: how many threads this product may use; vector256: force the 256-bit kernel.
    /// </summary>
    internal static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads, bool vector256)
    {
        if (m <= 0 || n <= 0) return;
        if (k <= 0 || alpha == 0)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        var job = new Job
        {
            A = a, B = b, C = c, M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc,
            TransA = transA, TransB = transB, Alpha = alpha, Beta = beta,
        };
        SelectKernel(ref job, vector256);
        if (threads > 1 && (ParallelChunks.InRegion || !WorthThreads(m, n, k))) threads = 1;
        if (m <= DirectMaxM || (long)m * n * k < TinyWork)
        {
            Direct(in job, threads);
            return;
        }
        job.Kcn = KBlock(k);

        int NR = job.NR;
        job.N0 = 0;
        job.Nc = n;
        int mu = (m + job.MR - 1) / job.MR, nu = (n + NR - 1) / NR;
        if (threads <= 1)
        {
            // Classic order: each kc x NC block of B is packed right before use and stays in L2.
            ComputeChunk(in job, 0, m, 0, n);
        }
        else if (mu >= 8 * threads || mu >= nu)
        {
            // Row split (m >= 128 for 2 threads): op(B) is packed once per panel, shared by all threads,
            // and each row chunk packs only its own rows of A.
            int panel = (int)Math.Clamp(PanelMaxFloats / k / NR * NR, NR, (long)nu * NR);
            float* packedB = Buffer(ref t_packB, (long)panel * k);
            for (int n0 = 0; n0 < n; n0 += panel)
            {
                job.N0 = n0;
                job.Nc = Math.Min(panel, n - n0);
                job.NcPad = (job.Nc + NR - 1) / NR * NR;
                job.PackedB = packedB;
                new PanelWork(job, threads).Run();
            }
        }
        else
        {
            // Column split for short, wide products: each chunk packs its own columns of B (no sharing
            // needed) and the few rows of A.
            var box = new StrongBox<Job>(job);
            int chunks = Math.Min(nu, threads * ChunksPerThread);
            ParallelChunks.Run(threads, chunks, ci =>
            {
                ref readonly Job j = ref box.Value;
                int u0 = (int)((long)nu * ci / chunks), u1 = (int)((long)nu * (ci + 1) / chunks);
                ComputeChunk(in j, 0, j.M, u0 * j.NR, Math.Min(j.N, u1 * j.NR));
            });
        }
    }

    private static void SelectKernel(ref Job job, bool vector256)
    {
        if (!vector256 && Vector512.IsHardwareAccelerated)
        {
            job.MR = 8; job.NR = 32; job.Kernel = &Kernel8x32; job.HalfKernel = &Kernel8x16Stride32;
        }
        else
        {
            job.MR = 6; job.NR = 16; job.HalfKernel = null;
            // Where Vector256 is not accelerated (ARM64, x86 without AVX2) it would run in software: use 128-bit vectors.
            job.Kernel = Vector256.IsHardwareAccelerated || !Vector128.IsHardwareAccelerated ? &Kernel6x16 : &Kernel6x16Vector128;
        }
    }

    /// <summary>Depth of the k blocks for a product of depth k: equal blocks of at most KcMax (1024 -> 3 x 342).</summary>
    internal static int KBlock(int k)
    {
        int nkb = (k + KcMax - 1) / KcMax;
        return (k + nkb - 1) / nkb;
    }

    /// <summary>Columns of B each sliver holds with this kernel width (32 with AVX-512, else 16).</summary>
    internal static int SliverWidth(bool vector256) => !vector256 && Vector512.IsHardwareAccelerated ? 32 : 16;

    /// <summary>
    /// Packs all of op(B) (k x n) into <paramref name="dst"/> in the layout a row-split product shares between
    /// its threads: k blocks of depth <see cref="KBlock"/>, each [slivers][kc][NR] over n padded to NR
    /// (kcn * ... floats: k x NcPad in all). Products that reuse one B for many row blocks pack it once.
    /// </summary>
    internal static void PackWholeB(bool transB, int n, int k, float* b, int ldb, float* dst, int threads, bool vector256)
    {
        var job = new Job { B = b, N = n, K = k, Ldb = ldb, TransB = transB, PackedB = dst, N0 = 0, Nc = n };
        SelectKernel(ref job, vector256);
        job.Kcn = KBlock(k);
        job.NcPad = (n + job.NR - 1) / job.NR * job.NR;
        if (threads > 1 && (ParallelChunks.InRegion || (long)n * k < 1L << 16)) threads = 1;
        int chunks = NumPackChunks(in job);
        if (threads <= 1)
        {
            PackBRange(in job, 0, chunks);
            return;
        }
        var box = new StrongBox<Job>(job);
        ParallelChunks.Run(threads, chunks, i => PackBRange(in box.Value, i, i + 1));
    }

    /// <summary>
    /// C = alpha * op(A) B + beta * C with B already packed by <see cref="PackWholeB"/> (same n, k and kernel
    /// width). Results equal <see cref="Sgemm"/>'s bit for bit: the same kernel, k blocking and per-element order.
    /// </summary>
    internal static void SgemmPackedB(bool transA, int m, int n, int k, float alpha, float* a, int lda, float* packedB,
        float beta, float* c, int ldc, int threads, bool vector256)
    {
        if (m <= 0 || n <= 0) return;
        if (k <= 0 || alpha == 0)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        var job = new Job
        {
            A = a, C = c, M = m, N = n, K = k, Lda = lda, Ldc = ldc, TransA = transA, Alpha = alpha, Beta = beta,
            PackedB = packedB, N0 = 0, Nc = n,
        };
        SelectKernel(ref job, vector256);
        job.Kcn = KBlock(k);
        job.NcPad = (n + job.NR - 1) / job.NR * job.NR;
        if (threads > 1 && (ParallelChunks.InRegion || !WorthThreads(m, n, k))) threads = 1;
        int units = (m + job.MR - 1) / job.MR;
        if (threads <= 1 || units < 2)
        {
            ComputeChunk(in job, 0, m, 0, n);
            return;
        }
        var box = new StrongBox<Job>(job);
        int chunks = Math.Min(units, threads * ChunksPerThread);
        ParallelChunks.Run(threads, chunks, ci =>
        {
            ref readonly Job j = ref box.Value;
            int u0 = (int)((long)units * ci / chunks), u1 = (int)((long)units * (ci + 1) / chunks);
            ComputeChunk(in j, u0 * j.MR, Math.Min(j.M, u1 * j.MR), 0, j.N);
        });
    }

    // B is packed in units of (k block, 4 slivers) so both threads can share the packing.
    private const int SliversPerPackChunk = 4;

    private static int NumPackChunks(in Job job)
    {
        int nkb = (job.K + job.Kcn - 1) / job.Kcn;
        int groups = (job.NcPad / job.NR + SliversPerPackChunk - 1) / SliversPerPackChunk;
        return nkb * groups;
    }

    private static void PackBRange(in Job job, int chunk0, int chunk1)
    {
        int groups = (job.NcPad / job.NR + SliversPerPackChunk - 1) / SliversPerPackChunk;
        for (int ch = chunk0; ch < chunk1; ch++)
        {
            int kb = ch / groups, g = ch % groups;
            int p0 = kb * job.Kcn, kc = Math.Min(job.Kcn, job.K - p0);
            int j0 = g * SliversPerPackChunk * job.NR;
            int nc = Math.Min(SliversPerPackChunk * job.NR, job.Nc - j0);
            if (nc > 0)
                PackB(in job, job.N0 + j0, nc, p0, kc, job.PackedB + (long)p0 * job.NcPad + (long)j0 * kc);
        }
    }

    /// <summary>One panel of a row-split product: shared B packing, then row chunks of C.</summary>
    private sealed class PanelWork(Job job, int threads)
    {
        private readonly Job _job = job;
        private int _packed;
        private int _packChunks, _splitChunks, _units;

        public void Run()
        {
            ref readonly Job j = ref _job;
            _packChunks = NumPackChunks(in j);
            _units = (j.M + j.MR - 1) / j.MR;
            _splitChunks = Math.Min(_units, threads * ChunksPerThread);
            ParallelChunks.Run(threads, _packChunks + _splitChunks, Chunk);
        }

        private void Chunk(int i)
        {
            ref readonly Job j = ref _job;
            if (i < _packChunks)
            {
                PackBRange(in j, i, i + 1);
                Interlocked.Increment(ref _packed);
                return;
            }
            // Chunks are claimed in order, so only packing already under way on another thread is awaited.
            var spin = new SpinWait();
            while (Volatile.Read(ref _packed) < _packChunks) spin.SpinOnce(-1);
            int ci = i - _packChunks;
            int u0 = (int)((long)_units * ci / _splitChunks), u1 = (int)((long)_units * (ci + 1) / _splitChunks);
            ComputeChunk(in j, u0 * j.MR, Math.Min(j.M, u1 * j.MR), 0, j.Nc);
        }
    }

    // Products with at most this many rows skip packing: B is streamed once per 8 rows (4 when
    // transposed), which beats packing it (an extra read and write of B) when few rows reuse it
    // (adaLN modulation 4 x 6912 x 1152, GEMV-like 1 x n x k).
    internal static int DirectMaxM = 8;
    // Below this m*n*k packing and blocking cost more than they save.
    internal static long TinyWork = 32 * 1024;
    // Columns of C accumulated per pass of the direct path (8 rows x 512 floats = 16 KB, L1).
    internal static int DirectBlock = 512;

    /// <summary>Unpacked product for short or tiny products; parallel over column blocks.</summary>
    private static void Direct(in Job job, int threads)
    {
        const int Block = 256; // columns per parallel chunk
        int chunks = (job.N + Block - 1) / Block;
        if (threads <= 1 || chunks == 1)
        {
            DirectColumns(in job, 0, job.N);
            return;
        }
        var box = new StrongBox<Job>(job);
        ParallelChunks.Run(threads, chunks, ci =>
            DirectColumns(in box.Value, ci * Block, Math.Min(box.Value.N, (ci + 1) * Block)));
    }

    private static void DirectColumns(in Job job, int j0, int j1)
    {
        if (!job.TransB)
        {
            DirectNN(in job, j0, j1);
            return;
        }
        int m = job.M;
        // A(i, p) = a[i * sai + p * sap]
        long sai = job.TransA ? 1 : job.Lda, sap = job.TransA ? job.Lda : 1;
        for (int i0 = 0; i0 < m; i0 += 4)
        {
            int rows = Math.Min(4, m - i0);
            // Missing rows of a short group repeat the last row; their results are not stored.
            float* a0 = job.A + i0 * sai;
            float* a1 = job.A + (i0 + Math.Min(1, rows - 1)) * sai;
            float* a2 = job.A + (i0 + Math.Min(2, rows - 1)) * sai;
            float* a3 = job.A + (i0 + Math.Min(3, rows - 1)) * sai;
            DirectRowsNT(in job, a0, a1, a2, a3, sap, rows, job.C + (long)i0 * job.Ldc, j0, j1);
        }
    }

    /// <summary>
    /// C = op(A) B with B stored [k, n], up to 8 rows at a time: B is read row by row (contiguous, so the
    /// prefetchers keep up) and the rows of C are accumulated in an L1 block, 4 k steps per pass.
    /// Per element the k order is sequential, as in the packed kernel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DirectNN(in Job job, int j0, int j1)
    {
        int W = DirectBlock; const int R = 8;
        bool wide = job.NR == 32; // the AVX-512 configuration
        int m = job.M, k = job.K;
        long sai = job.TransA ? 1 : job.Lda, sap = job.TransA ? job.Lda : 1;
        long ldb = job.Ldb, ldc = job.Ldc;
        float alpha = job.Alpha, beta = job.Beta;
        float* acc = stackalloc float[R * W];
        for (int i0 = 0; i0 < m; i0 += R)
        {
            int rows = Math.Min(R, m - i0);
            float* a = job.A + i0 * sai;
            for (int jb = j0; jb < j1; jb += W)
            {
                int w = Math.Min(W, j1 - jb), w8 = w & ~7;
                for (int r = 0; r < rows; r++) new Span<float>(acc + r * W, w).Clear();
                float* b = job.B + jb;
                int p = 0;
                for (; p + 4 <= k; p += 4)
                {
                    float* b0 = b + p * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
                    for (int r = 0; r < rows; r++)
                    {
                        float* ar = a + r * sai + p * sap;
                        float s0 = ar[0], s1 = ar[sap], s2 = ar[2 * sap], s3 = ar[3 * sap];
                        Vector256<float> x0 = Vector256.Create(s0), x1 = Vector256.Create(s1);
                        Vector256<float> x2 = Vector256.Create(s2), x3 = Vector256.Create(s3);
                        float* cr = acc + r * W;
                        int j = 0;
                        if (wide)
                        {
                            Vector512<float> y0 = Vector512.Create(s0), y1 = Vector512.Create(s1);
                            Vector512<float> y2 = Vector512.Create(s2), y3 = Vector512.Create(s3);
                            for (; j + 16 <= w; j += 16)
                            {
                                Vector512<float> v = Vector512.Load(cr + j);
                                v = Vector512.FusedMultiplyAdd(y0, Vector512.Load(b0 + j), v);
                                v = Vector512.FusedMultiplyAdd(y1, Vector512.Load(b1 + j), v);
                                v = Vector512.FusedMultiplyAdd(y2, Vector512.Load(b2 + j), v);
                                v = Vector512.FusedMultiplyAdd(y3, Vector512.Load(b3 + j), v);
                                v.Store(cr + j);
                            }
                        }
                        for (; j < w8; j += 8)
                        {
                            Vector256<float> v = Vector256.Load(cr + j);
                            v = Vector256.FusedMultiplyAdd(x0, Vector256.Load(b0 + j), v);
                            v = Vector256.FusedMultiplyAdd(x1, Vector256.Load(b1 + j), v);
                            v = Vector256.FusedMultiplyAdd(x2, Vector256.Load(b2 + j), v);
                            v = Vector256.FusedMultiplyAdd(x3, Vector256.Load(b3 + j), v);
                            v.Store(cr + j);
                        }
                        for (; j < w; j++)
                        {
                            float v = cr[j];
                            v = MathF.FusedMultiplyAdd(s0, b0[j], v);
                            v = MathF.FusedMultiplyAdd(s1, b1[j], v);
                            v = MathF.FusedMultiplyAdd(s2, b2[j], v);
                            v = MathF.FusedMultiplyAdd(s3, b3[j], v);
                            cr[j] = v;
                        }
                    }
                }
                for (; p < k; p++)
                {
                    float* b0 = b + p * ldb;
                    for (int r = 0; r < rows; r++)
                    {
                        float s0 = a[r * sai + p * sap];
                        Vector256<float> x0 = Vector256.Create(s0);
                        float* cr = acc + r * W;
                        int j = 0;
                        for (; j < w8; j += 8)
                            Vector256.FusedMultiplyAdd(x0, Vector256.Load(b0 + j), Vector256.Load(cr + j)).Store(cr + j);
                        for (; j < w; j++) cr[j] = MathF.FusedMultiplyAdd(s0, b0[j], cr[j]);
                    }
                }
                for (int r = 0; r < rows; r++)
                {
                    float* cr = acc + r * W;
                    float* c = job.C + (i0 + r) * ldc + jb;
                    int j = 0;
                    for (; j < w8; j += 8) StoreRow(c + j, Vector256.Load(cr + j), alpha, beta);
                    for (; j < w; j++) StoreScalar(c + j, cr[j], alpha, beta);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector256<float> acc, float alpha, float beta)
    {
        Vector256<float> r = acc * Vector256.Create(alpha);
        if (beta == 1) r += Vector256.Load(c);
        else if (beta != 0) r += Vector256.Load(c) * Vector256.Create(beta);
        r.Store(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreScalar(float* c, float acc, float alpha, float beta)
    {
        float r = acc * alpha;
        if (beta == 1) r += *c;
        else if (beta != 0) r += *c * beta;
        *c = r;
    }

    /// <summary>Up to 4 rows of C = op(A) B^T with B stored [n, k]: dot products along contiguous k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DirectRowsNT(in Job job, float* a0, float* a1, float* a2, float* a3, long sap, int rows,
        float* c, int j0, int j1)
    {
        int k = job.K;
        long ldb = job.Ldb, ldc = job.Ldc;
        float alpha = job.Alpha, beta = job.Beta;
        if (sap != 1)
        {
            // Transposed A: copy the 4 rows into contiguous scratch so both operands stream along k.
            float* rowsBuf = Buffer(ref t_packA, 4L * k);
            for (int p = 0; p < k; p++)
            {
                long o = p * sap;
                rowsBuf[p] = a0[o]; rowsBuf[k + p] = a1[o]; rowsBuf[2 * k + p] = a2[o]; rowsBuf[3 * k + p] = a3[o];
            }
            a0 = rowsBuf; a1 = rowsBuf + k; a2 = rowsBuf + 2 * k; a3 = rowsBuf + 3 * k;
        }
        int k8 = k & ~7;
        for (int j = j0; j < j1; j++)
        {
            float* b = job.B + j * ldb;
            Vector256<float> v0 = default, v1 = default, v2 = default, v3 = default;
            for (int p = 0; p < k8; p += 8)
            {
                Vector256<float> bv = Vector256.Load(b + p);
                v0 = Vector256.FusedMultiplyAdd(Vector256.Load(a0 + p), bv, v0);
                v1 = Vector256.FusedMultiplyAdd(Vector256.Load(a1 + p), bv, v1);
                v2 = Vector256.FusedMultiplyAdd(Vector256.Load(a2 + p), bv, v2);
                v3 = Vector256.FusedMultiplyAdd(Vector256.Load(a3 + p), bv, v3);
            }
            float s0 = Vector256.Sum(v0), s1 = Vector256.Sum(v1), s2 = Vector256.Sum(v2), s3 = Vector256.Sum(v3);
            for (int p = k8; p < k; p++)
            {
                float bv = b[p];
                s0 = MathF.FusedMultiplyAdd(a0[p], bv, s0); s1 = MathF.FusedMultiplyAdd(a1[p], bv, s1);
                s2 = MathF.FusedMultiplyAdd(a2[p], bv, s2); s3 = MathF.FusedMultiplyAdd(a3[p], bv, s3);
            }
            StoreScalar(c + j, s0, alpha, beta);
            if (rows > 1) StoreScalar(c + ldc + j, s1, alpha, beta);
            if (rows > 2) StoreScalar(c + 2 * ldc + j, s2, alpha, beta);
            if (rows > 3) StoreScalar(c + 3 * ldc + j, s3, alpha, beta);
        }
    }

    // Packing, edge and block loops are compiled fully optimised on first use
    // (AggressiveOptimization): their tier-0 versions ran packing 20x slower during warm-up.

    /// <summary>C = beta * C, where beta == 0 overwrites (NaN in C does not survive).</summary>
    internal static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0) row.Clear();
            else if (beta != 1)
                for (int j = 0; j < row.Length; j++) row[j] *= beta;
        }
    }

    /// <summary>64-byte aligned start of a pinned buffer of at least <paramref name="floats"/> floats, grown when too small.</summary>
    internal static float* Buffer(ref float[]? buf, long floats)
    {
        // Pinned-heap arrays never move, so the aligned pointer stays valid while the owner holds the array.
        if (buf is null || buf.Length < floats + 16)
            buf = GC.AllocateUninitializedArray<float>((int)Math.Max(floats + 16, 4096), pinned: true);
        nint p = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buf));
        return (float*)((p + 63) & ~(nint)63);
    }

    /// <summary>
    /// Rows [m0, m1) x columns [n0, n1) of the current panel of C (n0 a multiple of NR). B comes from the
    /// shared packed panel when there is one, else each kc x NC block is packed here; the rows of A are
    /// packed per k block into this thread's buffer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ComputeChunk(in Job job, int m0, int m1, int n0, int n1)
    {
        int MR = job.MR, NR = job.NR, k = job.K, kcn = job.Kcn;
        int mcMax = Math.Min(McMax, m1 - m0);
        float* ap = Buffer(ref t_packA, (long)((mcMax + MR - 1) / MR * MR) * kcn);
        int ncBlock = Math.Max(NR, NcMax / NR * NR);
        bool shared = job.PackedB != null;
        float* bLocal = shared ? null : Buffer(ref t_packB, (long)Math.Min(ncBlock, (n1 - n0 + NR - 1) / NR * NR) * kcn);
        float* tmp = stackalloc float[MR * NR + 16];
        tmp = (float*)(((nint)tmp + 63) & ~(nint)63);
        var kernel = job.Kernel;
        var half = job.HalfKernel;
        int halfNr = NR / 2;
        nint ldc = job.Ldc;
        float alpha = job.Alpha;

        for (int p0 = 0; p0 < k; p0 += kcn)
        {
            int kc = Math.Min(kcn, k - p0);
            float beta = p0 == 0 ? job.Beta : 1f;
            for (int ic = m0; ic < m1; ic += McMax)
            {
                int mc = Math.Min(McMax, m1 - ic);
                PackA(in job, ic, mc, p0, kc, ap);
                for (int jc = n0; jc < n1; jc += ncBlock)
                {
                    int nc = Math.Min(ncBlock, n1 - jc);
                    float* bBlock;
                    if (shared)
                        bBlock = job.PackedB + (long)p0 * job.NcPad + (long)jc * kc;
                    else
                    {
                        PackB(in job, job.N0 + jc, nc, p0, kc, bLocal);
                        bBlock = bLocal;
                    }
                    for (int ir = 0; ir < mc; ir += MR)
                    {
                        int mr = Math.Min(MR, mc - ir);
                        float* aS = ap + (long)ir * kc;
                        float* cRow = job.C + (long)(ic + ir) * ldc + job.N0 + jc;
                        for (int jr = 0; jr < nc; jr += NR)
                        {
                            int nr = Math.Min(NR, nc - jr);
                            float* bS = bBlock + (long)jr * kc;
                            if (mr == MR && nr == NR)
                            {
                                kernel(kc, aS, bS, cRow + jr, ldc, alpha, beta);
                            }
                            else if (half != null && nr <= halfNr)
                            {
                                if (mr == MR && nr == halfNr)
                                    half(kc, aS, bS, cRow + jr, ldc, alpha, beta);
                                else
                                {
                                    half(kc, aS, bS, tmp, NR, alpha, 0f);
                                    AddEdge(tmp, NR, cRow + jr, ldc, mr, nr, beta);
                                }
                            }
                            else
                            {
                                // Edge tile: the packed panels are zero-padded, so compute the full tile into
                                // a scratch block and add only the valid mr x nr part (same rounding as full tiles).
                                kernel(kc, aS, bS, tmp, NR, alpha, 0f);
                                AddEdge(tmp, NR, cRow + jr, ldc, mr, nr, beta);
                            }
                        }
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddEdge(float* tmp, int ldt, float* c, nint ldc, int mr, int nr, float beta)
    {
        for (int i = 0; i < mr; i++)
        {
            float* t = tmp + i * ldt;
            float* cr = c + i * ldc;
            if (beta == 0)
                for (int j = 0; j < nr; j++) cr[j] = t[j];
            else if (beta == 1)
                for (int j = 0; j < nr; j++) cr[j] = t[j] + cr[j];
            else
                for (int j = 0; j < nr; j++) cr[j] = t[j] + cr[j] * beta;
        }
    }

    /// <summary>Packs rows [i0, i0+mc) x k range [p0, p0+kc) of op(A) into MR-row slivers laid out [kc][MR].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(in Job job, int i0, int mc, int p0, int kc, float* dst)
    {
        int MR = job.MR;
        long lda = job.Lda;
        for (int s = 0; s < mc; s += MR, dst += (long)MR * kc)
        {
            int mr = Math.Min(MR, mc - s);
            int row = i0 + s;
            if (job.TransA)
            {
                // Stored [k, m]: the MR values for one p are contiguous.
                float* src = job.A + (long)p0 * lda + row;
                if (mr == 8)
                {
                    for (int p = 0; p < kc; p++)
                        Vector256.Store(Vector256.Load(src + p * lda), dst + p * 8);
                }
                else
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* sp = src + p * lda;
                        float* dp = dst + p * MR;
                        int i = 0;
                        for (; i < mr; i++) dp[i] = sp[i];
                        for (; i < MR; i++) dp[i] = 0;
                    }
                }
            }
            else
            {
                // Stored [m, k]: each of the MR rows is contiguous in p, so transpose 8 x 8 blocks.
                float* src = job.A + (long)row * lda + p0;
                int p = 0;
                if (MR == 8 && mr == 8 && Avx.IsSupported)
                {
                    for (; p + 8 <= kc; p += 8)
                        Transpose8x8Store(src + p, lda, dst + p * 8, 8);
                }
                for (; p < kc; p++)
                {
                    float* dp = dst + p * MR;
                    int i = 0;
                    for (; i < mr; i++) dp[i] = src[i * lda + p];
                    for (; i < MR; i++) dp[i] = 0;
                }
            }
        }
    }

    /// <summary>Packs k range [p0, p0+kc) x columns [j0, j0+nc) of op(B) into NR-column slivers laid out [kc][NR].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(in Job job, int j0, int nc, int p0, int kc, float* dst)
    {
        int NR = job.NR;
        long ldb = job.Ldb;
        for (int s = 0; s < nc; s += NR, dst += (long)NR * kc)
        {
            int nr = Math.Min(NR, nc - s);
            int col = j0 + s;
            if (!job.TransB)
            {
                // Stored [k, n]: one sliver row is NR contiguous floats.
                float* src = job.B + (long)p0 * ldb + col;
                if (nr == NR)
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* sp = src + p * ldb;
                        float* dp = dst + p * NR;
                        for (int j = 0; j < NR; j += 8)
                            Vector256.Store(Vector256.Load(sp + j), dp + j);
                    }
                }
                else
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* sp = src + p * ldb;
                        float* dp = dst + p * NR;
                        int j = 0;
                        for (; j < nr; j++) dp[j] = sp[j];
                        for (; j < NR; j++) dp[j] = 0;
                    }
                }
            }
            else
            {
                // Stored [n, k]: each column of op(B) is a contiguous row, so transpose 8 x 8 blocks.
                float* src = job.B + (long)col * ldb + p0;
                int p = 0;
                if (nr == NR && Avx.IsSupported)
                {
                    for (; p + 8 <= kc; p += 8)
                        for (int g = 0; g < NR; g += 8)
                            Transpose8x8Store(src + g * ldb + p, ldb, dst + p * NR + g, NR);
                }
                for (; p < kc; p++)
                {
                    float* dp = dst + p * NR;
                    int j = 0;
                    for (; j < nr; j++) dp[j] = src[j * ldb + p];
                    for (; j < NR; j++) dp[j] = 0;
                }
            }
        }
    }

    /// <summary>Reads 8 rows of 8 floats (row stride ld) and writes their transpose as 8 rows (stride ldd).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8Store(float* src, long ld, float* dst, int ldd)
    {
        Vector256<float> r0 = Avx.LoadVector256(src), r1 = Avx.LoadVector256(src + ld);
        Vector256<float> r2 = Avx.LoadVector256(src + 2 * ld), r3 = Avx.LoadVector256(src + 3 * ld);
        Vector256<float> r4 = Avx.LoadVector256(src + 4 * ld), r5 = Avx.LoadVector256(src + 5 * ld);
        Vector256<float> r6 = Avx.LoadVector256(src + 6 * ld), r7 = Avx.LoadVector256(src + 7 * ld);
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> s0 = Avx.Shuffle(t0, t2, 0x44), s1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> s2 = Avx.Shuffle(t1, t3, 0x44), s3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> s4 = Avx.Shuffle(t4, t6, 0x44), s5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> s6 = Avx.Shuffle(t5, t7, 0x44), s7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(s3, s7, 0x31));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void St512(float* c, Vector512<float> acc, Vector512<float> va, Vector512<float> vb, int mode)
    {
        Vector512<float> r = acc * va;
        if (mode == 1) r += Vector512.Load(c);
        else if (mode == 2) r += Vector512.Load(c) * vb;
        r.Store(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void St256(float* c, Vector256<float> acc, Vector256<float> va, Vector256<float> vb, int mode)
    {
        Vector256<float> r = acc * va;
        if (mode == 1) r += Vector256.Load(c);
        else if (mode == 2) r += Vector256.Load(c) * vb;
        r.Store(c);
    }

    // Micro-kernels: C[MR x NR] (row stride ldc) = alpha * sum_p a[p*MR + i] * b[p*NR + j] + beta * C,
    // beta == 0 not reading C. Written out per row so every accumulator stays in a register.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default; Vector512<float> c01 = default;
        Vector512<float> c10 = default; Vector512<float> c11 = default;
        Vector512<float> c20 = default; Vector512<float> c21 = default;
        Vector512<float> c30 = default; Vector512<float> c31 = default;
        Vector512<float> c40 = default; Vector512<float> c41 = default;
        Vector512<float> c50 = default; Vector512<float> c51 = default;
        Vector512<float> c60 = default; Vector512<float> c61 = default;
        Vector512<float> c70 = default; Vector512<float> c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0); Vector512<float> b1 = Vector512.Load(b + 16);
            { Vector512<float> av = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00); c01 = Vector512.FusedMultiplyAdd(av, b1, c01); }
            { Vector512<float> av = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10); c11 = Vector512.FusedMultiplyAdd(av, b1, c11); }
            { Vector512<float> av = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20); c21 = Vector512.FusedMultiplyAdd(av, b1, c21); }
            { Vector512<float> av = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30); c31 = Vector512.FusedMultiplyAdd(av, b1, c31); }
            { Vector512<float> av = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40); c41 = Vector512.FusedMultiplyAdd(av, b1, c41); }
            { Vector512<float> av = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50); c51 = Vector512.FusedMultiplyAdd(av, b1, c51); }
            { Vector512<float> av = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(av, b0, c60); c61 = Vector512.FusedMultiplyAdd(av, b1, c61); }
            { Vector512<float> av = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(av, b0, c70); c71 = Vector512.FusedMultiplyAdd(av, b1, c71); }
            a += 8; b += 32;
        }
        Vector512<float> va = Vector512.Create(alpha), vb = Vector512.Create(beta);
        int mode = beta == 0 ? 0 : beta == 1 ? 1 : 2;
        St512(c + 0 * ldc + 0, c00, va, vb, mode); St512(c + 0 * ldc + 16, c01, va, vb, mode);
        St512(c + 1 * ldc + 0, c10, va, vb, mode); St512(c + 1 * ldc + 16, c11, va, vb, mode);
        St512(c + 2 * ldc + 0, c20, va, vb, mode); St512(c + 2 * ldc + 16, c21, va, vb, mode);
        St512(c + 3 * ldc + 0, c30, va, vb, mode); St512(c + 3 * ldc + 16, c31, va, vb, mode);
        St512(c + 4 * ldc + 0, c40, va, vb, mode); St512(c + 4 * ldc + 16, c41, va, vb, mode);
        St512(c + 5 * ldc + 0, c50, va, vb, mode); St512(c + 5 * ldc + 16, c51, va, vb, mode);
        St512(c + 6 * ldc + 0, c60, va, vb, mode); St512(c + 6 * ldc + 16, c61, va, vb, mode);
        St512(c + 7 * ldc + 0, c70, va, vb, mode); St512(c + 7 * ldc + 16, c71, va, vb, mode);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x16Stride32(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default;
        Vector512<float> c10 = default;
        Vector512<float> c20 = default;
        Vector512<float> c30 = default;
        Vector512<float> c40 = default;
        Vector512<float> c50 = default;
        Vector512<float> c60 = default;
        Vector512<float> c70 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            { Vector512<float> av = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00); }
            { Vector512<float> av = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10); }
            { Vector512<float> av = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20); }
            { Vector512<float> av = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30); }
            { Vector512<float> av = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40); }
            { Vector512<float> av = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50); }
            { Vector512<float> av = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(av, b0, c60); }
            { Vector512<float> av = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(av, b0, c70); }
            a += 8; b += 32;
        }
        Vector512<float> va = Vector512.Create(alpha), vb = Vector512.Create(beta);
        int mode = beta == 0 ? 0 : beta == 1 ? 1 : 2;
        St512(c + 0 * ldc + 0, c00, va, vb, mode);
        St512(c + 1 * ldc + 0, c10, va, vb, mode);
        St512(c + 2 * ldc + 0, c20, va, vb, mode);
        St512(c + 3 * ldc + 0, c30, va, vb, mode);
        St512(c + 4 * ldc + 0, c40, va, vb, mode);
        St512(c + 5 * ldc + 0, c50, va, vb, mode);
        St512(c + 6 * ldc + 0, c60, va, vb, mode);
        St512(c + 7 * ldc + 0, c70, va, vb, mode);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default; Vector256<float> c01 = default;
        Vector256<float> c10 = default; Vector256<float> c11 = default;
        Vector256<float> c20 = default; Vector256<float> c21 = default;
        Vector256<float> c30 = default; Vector256<float> c31 = default;
        Vector256<float> c40 = default; Vector256<float> c41 = default;
        Vector256<float> c50 = default; Vector256<float> c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0); Vector256<float> b1 = Vector256.Load(b + 8);
            { Vector256<float> av = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(av, b0, c00); c01 = Vector256.FusedMultiplyAdd(av, b1, c01); }
            { Vector256<float> av = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(av, b0, c10); c11 = Vector256.FusedMultiplyAdd(av, b1, c11); }
            { Vector256<float> av = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(av, b0, c20); c21 = Vector256.FusedMultiplyAdd(av, b1, c21); }
            { Vector256<float> av = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(av, b0, c30); c31 = Vector256.FusedMultiplyAdd(av, b1, c31); }
            { Vector256<float> av = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(av, b0, c40); c41 = Vector256.FusedMultiplyAdd(av, b1, c41); }
            { Vector256<float> av = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(av, b0, c50); c51 = Vector256.FusedMultiplyAdd(av, b1, c51); }
            a += 6; b += 16;
        }
        Vector256<float> va = Vector256.Create(alpha), vb = Vector256.Create(beta);
        int mode = beta == 0 ? 0 : beta == 1 ? 1 : 2;
        St256(c + 0 * ldc + 0, c00, va, vb, mode); St256(c + 0 * ldc + 8, c01, va, vb, mode);
        St256(c + 1 * ldc + 0, c10, va, vb, mode); St256(c + 1 * ldc + 8, c11, va, vb, mode);
        St256(c + 2 * ldc + 0, c20, va, vb, mode); St256(c + 2 * ldc + 8, c21, va, vb, mode);
        St256(c + 3 * ldc + 0, c30, va, vb, mode); St256(c + 3 * ldc + 8, c31, va, vb, mode);
        St256(c + 4 * ldc + 0, c40, va, vb, mode); St256(c + 4 * ldc + 8, c41, va, vb, mode);
        St256(c + 5 * ldc + 0, c50, va, vb, mode); St256(c + 5 * ldc + 8, c51, va, vb, mode);
    }


    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void St128(float* c, Vector128<float> acc, Vector128<float> va, Vector128<float> vb, int mode)
    {
        Vector128<float> r = acc * va;
        if (mode == 1) r += Vector128.Load(c);
        else if (mode == 2) r += Vector128.Load(c) * vb;
        r.Store(c);
    }

    /// <summary>
    /// <see cref="Kernel6x16"/> in 128-bit vectors, for machines where Vector256 is not accelerated (ARM64 NEON,
    /// x86 without AVX2): 24 accumulators fit NEON's 32 registers. Same packing (NR = 16) and the same
    /// per-element operations in the same order, so the results equal the 256-bit kernel's bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16Vector128(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector128<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector128<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector128<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector128<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector128<float> c40 = default, c41 = default, c42 = default, c43 = default;
        Vector128<float> c50 = default, c51 = default, c52 = default, c53 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector128<float> b0 = Vector128.Load(b + 0), b1 = Vector128.Load(b + 4), b2 = Vector128.Load(b + 8), b3 = Vector128.Load(b + 12);
            { Vector128<float> av = Vector128.Create(a[0]); c00 = Vector128.FusedMultiplyAdd(av, b0, c00); c01 = Vector128.FusedMultiplyAdd(av, b1, c01); c02 = Vector128.FusedMultiplyAdd(av, b2, c02); c03 = Vector128.FusedMultiplyAdd(av, b3, c03); }
            { Vector128<float> av = Vector128.Create(a[1]); c10 = Vector128.FusedMultiplyAdd(av, b0, c10); c11 = Vector128.FusedMultiplyAdd(av, b1, c11); c12 = Vector128.FusedMultiplyAdd(av, b2, c12); c13 = Vector128.FusedMultiplyAdd(av, b3, c13); }
            { Vector128<float> av = Vector128.Create(a[2]); c20 = Vector128.FusedMultiplyAdd(av, b0, c20); c21 = Vector128.FusedMultiplyAdd(av, b1, c21); c22 = Vector128.FusedMultiplyAdd(av, b2, c22); c23 = Vector128.FusedMultiplyAdd(av, b3, c23); }
            { Vector128<float> av = Vector128.Create(a[3]); c30 = Vector128.FusedMultiplyAdd(av, b0, c30); c31 = Vector128.FusedMultiplyAdd(av, b1, c31); c32 = Vector128.FusedMultiplyAdd(av, b2, c32); c33 = Vector128.FusedMultiplyAdd(av, b3, c33); }
            { Vector128<float> av = Vector128.Create(a[4]); c40 = Vector128.FusedMultiplyAdd(av, b0, c40); c41 = Vector128.FusedMultiplyAdd(av, b1, c41); c42 = Vector128.FusedMultiplyAdd(av, b2, c42); c43 = Vector128.FusedMultiplyAdd(av, b3, c43); }
            { Vector128<float> av = Vector128.Create(a[5]); c50 = Vector128.FusedMultiplyAdd(av, b0, c50); c51 = Vector128.FusedMultiplyAdd(av, b1, c51); c52 = Vector128.FusedMultiplyAdd(av, b2, c52); c53 = Vector128.FusedMultiplyAdd(av, b3, c53); }
            a += 6; b += 16;
        }
        Vector128<float> va = Vector128.Create(alpha), vb = Vector128.Create(beta);
        int mode = beta == 0 ? 0 : beta == 1 ? 1 : 2;
        St128(c + 0 * ldc + 0, c00, va, vb, mode); St128(c + 0 * ldc + 4, c01, va, vb, mode); St128(c + 0 * ldc + 8, c02, va, vb, mode); St128(c + 0 * ldc + 12, c03, va, vb, mode);
        St128(c + 1 * ldc + 0, c10, va, vb, mode); St128(c + 1 * ldc + 4, c11, va, vb, mode); St128(c + 1 * ldc + 8, c12, va, vb, mode); St128(c + 1 * ldc + 12, c13, va, vb, mode);
        St128(c + 2 * ldc + 0, c20, va, vb, mode); St128(c + 2 * ldc + 4, c21, va, vb, mode); St128(c + 2 * ldc + 8, c22, va, vb, mode); St128(c + 2 * ldc + 12, c23, va, vb, mode);
        St128(c + 3 * ldc + 0, c30, va, vb, mode); St128(c + 3 * ldc + 4, c31, va, vb, mode); St128(c + 3 * ldc + 8, c32, va, vb, mode); St128(c + 3 * ldc + 12, c33, va, vb, mode);
        St128(c + 4 * ldc + 0, c40, va, vb, mode); St128(c + 4 * ldc + 4, c41, va, vb, mode); St128(c + 4 * ldc + 8, c42, va, vb, mode); St128(c + 4 * ldc + 12, c43, va, vb, mode);
        St128(c + 5 * ldc + 0, c50, va, vb, mode); St128(c + 5 * ldc + 4, c51, va, vb, mode); St128(c + 5 * ldc + 8, c52, va, vb, mode); St128(c + 5 * ldc + 12, c53, va, vb, mode);
    }

}

/// <summary>
/// Fork-join over a few large chunks: the calling thread starts on chunk 0 at once while
/// threads - 1 helpers (<see cref="ComputeWorkers"/>, else pool threads) are woken, and every participant
/// claims the next unclaimed chunk, so a helper that starts late costs no more than running serially.
/// Parallel.For with one chunk per thread often ran both chunks on the caller here.
/// </summary>
internal sealed class ParallelChunks : IThreadPoolWorkItem
{
    [ThreadStatic] private static bool t_inRegion;

    private readonly Action<int> _body;
    private readonly int _count;
    // The owner's compute context, entered by helper threads while they run chunks of this region.
    private readonly ComputeContext? _context = ComputeContext.Raw;
    private int _next, _done;
    private Exception? _error;

    private ParallelChunks(Action<int> body, int count)
    {
        _body = body;
        _count = count;
    }

    /// <summary>
    /// True while this thread runs a chunk here (GEMM tiles, or a body of <see cref="ParallelLoop.For"/>):
    /// nested products and loops then run serially instead of oversubscribing the cores.
    /// </summary>
    public static bool InRegion => t_inRegion;

    /// <summary>Runs body(0 .. count-1) on up to <paramref name="threads"/> threads, including the caller.</summary>
    public static void Run(int threads, int count, Action<int> body)
    {
        if (count <= 0) return;
        if (threads <= 1 || count == 1 || InRegion)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        var work = new ParallelChunks(body, count);
        int others = Math.Min(threads, count) - 1;
        // The dedicated helpers first; the thread pool only for what they cannot take.
        int handed = ComputeWorkers.Hand(work, others);
        for (int t = handed; t < others; t++) ThreadPool.UnsafeQueueUserWorkItem(work, preferLocal: false);
        work.Execute();
        // Whatever is left is already running on another thread.
        var spin = new SpinWait();
        while (Volatile.Read(ref work._done) < count) spin.SpinOnce(-1);
        if (work._error is { } e) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
    }

    public void Execute()
    {
        bool outer = t_inRegion;
        t_inRegion = true;
        var outerContext = ComputeContext.Raw;
        ComputeContext.Raw = _context;
        try
        {
            int i;
            while ((i = Interlocked.Increment(ref _next) - 1) < _count)
            {
                try { _body(i); }
                catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
                finally { Interlocked.Increment(ref _done); }
            }
        }
        finally
        {
            t_inRegion = outer;
            ComputeContext.Raw = outerContext;
        }
    }
}
