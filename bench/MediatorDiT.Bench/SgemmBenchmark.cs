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
