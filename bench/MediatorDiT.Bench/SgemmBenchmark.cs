using System.Diagnostics;
using System.Text;
using MediatorDiT.Evaluation.Performance;
using MediatorDiT.Tensors;

namespace MediatorDiT.Bench;

/// <summary>SGEMM throughput per backend and thread count, on the model's shapes.</summary>
public static class SgemmBenchmark
{
    /// <summary>Median GFLOP/s (2*m*n*k / time) of C = A B after warm-up.</summary>
    public static double MeasureGflops(int m, int n, int k, GemmBackend backend, int threads, int repeats = 5)
        => MeasureGflops(m, n, k, backend, threads, repeats, transA: false, transB: false, batch: 1);

    /// <summary>Median GFLOP/s of C = op(A) op(B), optionally batched (the library's <see cref="SgemmRate"/>).</summary>
    public static double MeasureGflops(int m, int n, int k, GemmBackend backend, int threads, int repeats,
        bool transA, bool transB, int batch)
        => SgemmRate.Measure(m, n, k, backend, threads, repeats, transA, transB, batch);

    /// <summary>Two threads of scalar work against one (the library's <see cref="SgemmRate.TwoCoreRatio"/>).</summary>
    public static double TwoCoreRatio(int milliseconds = 30) => SgemmRate.TwoCoreRatio(milliseconds);

    /// <summary>
    /// One thread, the calling thread's CPU time: managed vs OpenBLAS on the products of a configs/fashion-mnist/shared.json
    /// training step (batch 64 x 256 tokens = 16,384 rows, hidden 96, MLP 384, head width 24, 4 to 64 mediators), and
    /// full.json's attention core (256 x 256 per image and head).
    /// </summary>
    public static string RecipeReport()
    {
        var shapes = new (string Name, int M, int N, int K, bool TA, bool TB)[]
        {
            ("1024^3", 1024, 1024, 1024, false, false),
            ("qkv x W^T 16384x288x96", 16384, 288, 96, false, true),
            ("proj x W^T 16384x96x96", 16384, 96, 96, false, true),
            ("fc1 block 256x384x96", 256, 384, 96, false, true),
            ("fc2 block 256x96x384", 256, 96, 384, false, true),
            ("dW qkv dy^T x 288x96x16384", 288, 96, 16384, true, false),
            ("dX qkv dy W 16384x96x288", 16384, 96, 288, false, false),
            ("dW fc1 384x96x16384", 384, 96, 16384, true, false),
            ("dX fc2 16384x384x96", 16384, 384, 96, false, false),
            ("dW fc2 96x384x16384", 96, 384, 16384, true, false),
            ("dX fc1 16384x96x384", 16384, 96, 384, false, false),
            ("dW proj 96x96x16384", 96, 96, 16384, true, false),
            ("dX proj 16384x96x96", 16384, 96, 96, false, false),
            ("full attn scores 256x256x24", 256, 256, 24, false, true),
            ("full attn O = P v 256x24x256", 256, 24, 256, false, false),
            ("full attn dv = P^T dO 256x24x256", 256, 24, 256, true, false),
            ("full attn scores 256x256x64", 256, 256, 64, false, true),
            ("full attn scores 256x256x72", 256, 256, 72, false, true),
            ("core dS2 = dO Vm^T 256x64x24", 256, 64, 24, false, true),
            ("core dVm = A2^T dO 64x24x256", 64, 24, 256, true, false),
            ("core dq = dS2 T 256x24x64", 256, 24, 64, false, false),
            ("core dS2 = dO Vm^T 256x4x24", 256, 4, 24, false, true),
            ("core dVm = A2^T dO 4x24x256", 4, 24, 256, true, false),
        };
        var sb = new StringBuilder();
        sb.AppendLine($"SGEMM GFLOP/s on 1 thread (thread CPU time, median of 5), {(ManagedGemm.Uses512 ? "AVX-512" : "256-bit")} managed kernel");
        sb.AppendLine($"{"shape (m x n x k)",-32} {"managed",8} {"OpenBLAS",9}");
        foreach (var s in shapes)
            sb.AppendLine($"{s.Name,-32} {CpuRate(s.M, s.N, s.K, s.TA, s.TB, GemmBackend.Managed),8:F1} {CpuRate(s.M, s.N, s.K, s.TA, s.TB, GemmBackend.OpenBlas),9:F1}");
        return sb.ToString();
    }

    private static double CpuRate(int m, int n, int k, bool ta, bool tb, GemmBackend backend)
    {
        if (backend == GemmBackend.OpenBlas && !Gemm.OpenBlasAvailable) return double.NaN;
        var rng = new RandomSource(5);
        float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
        rng.FillUniform(a, -1, 1);
        rng.FillUniform(b, -1, 1);
        int lda = ta ? m : k, ldb = tb ? k : n;
        long work = (long)m * n * k;
        int calls = (int)Math.Max(1, 30_000_000 / work);
        bool saved = OpProfiler.ThreadCpuTime;
        OpProfiler.ThreadCpuTime = true;
        try
        {
            for (int i = 0; i < calls; i++) Gemm.Sgemm(backend, 1, ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, c, n);
            var rates = new double[5];
            for (int r = 0; r < rates.Length; r++)
            {
                long t0 = OpProfiler.Now();
                for (int i = 0; i < calls; i++) Gemm.Sgemm(backend, 1, ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, c, n);
                rates[r] = 2.0 * work * calls / ((double)(OpProfiler.Now() - t0) / Stopwatch.Frequency) / 1e9;
            }
            Array.Sort(rates);
            return rates[2];
        }
        finally
        {
            OpProfiler.ThreadCpuTime = saved;
        }
    }

    /// <summary>Prints (and returns) the table: managed vs OpenBLAS at 1 and 2 threads.</summary>
    public static string Report()
    {
        var shapes = new (string Name, int M, int N, int K, bool TA, bool TB, int Batch)[]
        {
            ("1024^3", 1024, 1024, 1024, false, false, 1),
            ("1024x1152x384 qkv", 1024, 1152, 384, false, false, 1),
            ("1024x1536x384 mlp up", 1024, 1536, 384, false, false, 1),
            ("1024x384x1536 mlp down", 1024, 384, 1536, false, false, 1),
            ("256x256x64 x24 attn", 256, 256, 64, false, false, 24),
            ("2048x1536x384", 2048, 1536, 384, false, false, 1),
            ("A^T B 384x1152x1024 dW qkv", 384, 1152, 1024, true, false, 1),
            ("A^T B 384x1536x1024 dW up", 384, 1536, 1024, true, false, 1),
            ("A^T B 1536x384x1024 dW down", 1536, 384, 1024, true, false, 1),
            ("A B^T 1024x384x1152 dX qkv", 1024, 384, 1152, false, true, 1),
            ("A B^T 1024x384x1536 dX up", 1024, 384, 1536, false, true, 1),
            ("A B^T 1024x1536x384 dX down", 1024, 1536, 384, false, true, 1),
            ("A B^T 256x256x64 x24 scores", 256, 256, 64, false, true, 24),
            ("A^T B 64x256x256 x24 dV", 64, 256, 256, true, false, 24),
        };
        var sb = new StringBuilder();
        sb.AppendLine($"SGEMM GFLOP/s (median of 5), OpenBLAS {(Gemm.OpenBlasAvailable ? OpenBlas.LibraryName : "not found")}, " +
            $"{(ManagedGemm.Uses512 ? "AVX-512" : "256-bit")} managed kernel, {Environment.ProcessorCount} cores, " +
            $"two-core check {TwoCoreRatio(100):F2} (2.0 = both cores free)");
        // "OpenBLAS 2T" is the shipped policy (one-threaded OpenBLAS, blocks split over our threads);
        // "own 2T" lets OpenBLAS thread itself, for comparison.
        sb.AppendLine($"{"shape (m x n x k)",-30} {"managed 1T",10} {"managed 2T",10} {"OpenBLAS 1T",11} {"OpenBLAS 2T",11} {"own 2T",7} {"auto 2T",8}");
        foreach (var s in shapes)
        {
            double M(GemmBackend be, int t) => MeasureGflops(s.M, s.N, s.K, be, t, 5, s.TA, s.TB, s.Batch);
            double own = double.NaN;
            if (Gemm.OpenBlasAvailable && OpenBlas.CanSetThreads)
            {
                OpenBlas.SetThreads(2);
                try { own = M(GemmBackend.OpenBlas, 1); }
                finally { OpenBlas.SetThreads(1); }
            }
            sb.AppendLine($"{s.Name,-30} {M(GemmBackend.Managed, 1),10:F1} {M(GemmBackend.Managed, 2),10:F1} " +
                $"{M(GemmBackend.OpenBlas, 1),11:F1} {M(GemmBackend.OpenBlas, 2),11:F1} {own,7:F1} {M(GemmBackend.Auto, 2),8:F1}");
        }
        string text = sb.ToString();
        Console.Write(text);
        return text;
    }
}
