using System.Diagnostics;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation.Performance;

/// <summary>SGEMM throughput on this machine: the yardstick every model figure is divided by.</summary>
internal static class SgemmRate
{
    /// <summary>
    /// GFLOP/s of 1024^3 products on one thread in that thread's CPU time (median of
    /// <paramref name="repeats"/>): the yardstick for the 1-thread breakdowns, steady on a shared machine.
    /// </summary>
    public static double MeasureThreadCpu(int n = 1024, int repeats = 5)
    {
        var rng = new RandomSource(1234);
        float[] a = new float[n * n], b = new float[n * n], c = new float[n * n];
        rng.FillUniform(a, -1, 1);
        rng.FillUniform(b, -1, 1);
        bool saved = OpProfiler.ThreadCpuTime;
        OpProfiler.ThreadCpuTime = true;
        try
        {
            for (int w = 0; w < 3; w++) Gemm.Sgemm(Gemm.Backend, 1, false, false, n, n, n, 1f, a, n, b, n, 0f, c, n);
            var rates = new double[Math.Max(1, repeats)];
            for (int r = 0; r < rates.Length; r++)
            {
                long t0 = OpProfiler.Now();
                for (int i = 0; i < 3; i++) Gemm.Sgemm(Gemm.Backend, 1, false, false, n, n, n, 1f, a, n, b, n, 0f, c, n);
                rates[r] = 3 * 2.0 * n * n * n / ((double)(OpProfiler.Now() - t0) / Stopwatch.Frequency) / 1e9;
            }
            Array.Sort(rates);
            return rates[rates.Length / 2];
        }
        finally
        {
            OpProfiler.ThreadCpuTime = saved;
        }
    }

    /// <summary>
    /// Median GFLOP/s of C = op(A) op(B), optionally as a batched call of <paramref name="batch"/> products
    /// (flops counted over the whole batch). Each sample runs for at least ~30 ms.
    /// </summary>
    internal static double Measure(int m, int n, int k, GemmBackend backend, int threads, int repeats,
        bool transA, bool transB, int batch)
    {
        if (backend == GemmBackend.OpenBlas && !Gemm.OpenBlasAvailable) return double.NaN;
        var sampler = new Sampler(m, n, k, backend, threads, transA, transB, batch, seconds: 0.03);
        var rates = new double[Math.Max(1, repeats)];
        for (int r = 0; r < rates.Length; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            sampler.Run();
            rates[r] = sampler.Flops / Stopwatch.GetElapsedTime(t0).TotalSeconds / 1e9;
        }
        Array.Sort(rates);
        return rates[rates.Length / 2];
    }

    /// <summary>
    /// One timed sample of C = op(A) op(B) (m x n x k, optionally a batched call of <c>batch</c>
    /// products) for interleaving with other cases: <see cref="Run"/> makes as many calls as took about
    /// <c>seconds</c> during a warm-up here, <see cref="Flops"/> is their total (2 m n k per product).
    /// </summary>
    public sealed class Sampler
    {
        private readonly float[] _a, _b, _c;
        private readonly int _m, _n, _k, _threads, _batch, _calls;
        private readonly GemmBackend _backend;
        private readonly bool _transA, _transB;

        public double Flops => 2.0 * _m * _n * _k * _batch * _calls;

        /// <summary>Square products n^3 with the default backend.</summary>
        public Sampler(int n, int threads, double seconds = 0.1)
            : this(n, n, n, Gemm.Backend, threads, false, false, 1, seconds)
        {
        }

        internal Sampler(int m, int n, int k, GemmBackend backend, int threads, bool transA, bool transB, int batch, double seconds)
        {
            (_m, _n, _k, _backend, _threads, _transA, _transB, _batch) = (m, n, k, backend, threads, transA, transB, batch);
            var rng = new RandomSource(1234);
            _a = new float[(long)m * k * batch];
            _b = new float[(long)k * n * batch];
            _c = new float[(long)m * n * batch];
            rng.FillUniform(_a, -1, 1);
            rng.FillUniform(_b, -1, 1);
            // Warm-up: lets the kernels compile and the per-thread packing buffers grow.
            var sw = Stopwatch.StartNew();
            int calls = 0;
            while (calls < 3 || sw.Elapsed.TotalMilliseconds < 150) { Once(); calls++; }
            _calls = Math.Max(1, (int)(seconds / (sw.Elapsed.TotalSeconds / calls)));
        }

        private void Once()
        {
            int lda = _transA ? _m : _k, ldb = _transB ? _k : _n;
            if (_batch == 1)
                Gemm.Sgemm(_backend, _threads, _transA, _transB, _m, _n, _k, 1f, _a, lda, _b, ldb, 0f, _c, _n);
            else
                Gemm.SgemmBatched(_backend, _threads, _transA, _transB, _m, _n, _k, 1f, _a, lda, _m * _k, _b, ldb, _k * _n,
                    0f, _c, _n, _m * _n, _batch);
        }

        public void Run()
        {
            for (int i = 0; i < _calls; i++) Once();
        }
    }

    /// <summary>
    /// Throughput of two threads running independent scalar work, relative to one thread (~2.0 when the
    /// host gives this VM two full cores, ~1.0 while other processes or guests share them). 2-thread figures taken
    /// while this is well below 2 measure the host, not the kernels.
    /// </summary>
    public static double TwoCoreRatio(int milliseconds = 30)
    {
        static long Spin(int ms)
        {
            long n = 0;
            double x = 1;
            long end = Stopwatch.GetTimestamp() + ms * Stopwatch.Frequency / 1000;
            while (Stopwatch.GetTimestamp() < end)
            {
                for (int i = 0; i < 2000; i++) x = x * 1.0000001 + 1e-9;
                n++;
            }
            return x == 0 ? 0 : n;
        }
        long one = Spin(milliseconds);
        long other = 0;
        var t = new Thread(() => other = Spin(milliseconds));
        t.Start();
        long mine = Spin(milliseconds);
        t.Join();
        return (double)(mine + other) / Math.Max(1, one);
    }

}
