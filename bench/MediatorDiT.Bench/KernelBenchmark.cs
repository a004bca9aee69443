using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Text;
using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Bench;

/// <summary>
/// The element and row kernels one at a time on one thread, at SiT-S/2 shapes (256 tokens, 384 channels,
/// 6 heads of 64): median microseconds per call. Meant for comparing two builds side by side.
/// </summary>
public static class KernelBenchmark
{
    private static float[] Gaussian(int n, ulong seed, float std = 1f)
    {
        var v = new float[n];
        new RandomSource(seed).FillGaussian(v, 0, std);
        return v;
    }

    /// <summary>
    /// Median and least microseconds per call over <paramref name="rounds"/> rounds of at least 20 ms each, after
    /// warm-up, in this thread's CPU time (time the thread waits for a core shared with other work is not counted).
    /// </summary>
    private static (double Median, double Min) Time(Action body, int rounds)
    {
        for (int i = 0; i < 3; i++) body();
        var sw = Stopwatch.StartNew();
        int calls = 0;
        while (sw.Elapsed.TotalMilliseconds < 20) { body(); calls++; }
        var perCall = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            long start = OpProfiler.Now();
            for (int i = 0; i < calls; i++) body();
            perCall[r] = (OpProfiler.Now() - start) * 1e6 / Stopwatch.Frequency / calls;
        }
        Array.Sort(perCall);
        return (perCall[rounds / 2], perCall[0]);
    }

    public static string Run(int rounds = 15)
    {
        ComputeContext.Raw = ComputeContext.Default with { Threads = 1 };
        OpProfiler.ThreadCpuTime = true;
        var cases = new List<(string Name, Action Body)>();

        // Softmax rows: the mediator query rows (n = 16, 9), full attention's 256-wide rows, and their backward.
        foreach (var (n, rows, bias) in new[] { (16, 4096, true), (9, 4096, true), (64, 1024, true), (256, 1024, false) })
        {
            var src = Gaussian(n * rows, 1, 3f);
            var work = new float[src.Length];
            var b = bias ? Gaussian(n * rows, 2) : [];
            cases.Add(($"softmax fwd {rows}x{n}", () =>
            {
                src.CopyTo(work, 0);
                for (int r = 0; r < rows; r++) SoftmaxRows.Forward(work.AsSpan(r * n, n), bias ? b.AsSpan(r * n, n) : default);
            }));
            var p = (float[])src.Clone();
            for (int r = 0; r < rows; r++) SoftmaxRows.Forward(p.AsSpan(r * n, n), default);
            var g = Gaussian(n * rows, 3);
            cases.Add(($"softmax bwd {rows}x{n}", () =>
            {
                g.CopyTo(work, 0);
                for (int r = 0; r < rows; r++) SoftmaxRows.Backward(p.AsSpan(r * n, n), work.AsSpan(r * n, n));
            }));
        }

        // GELU on one MLP row block (128 rows x 1536).
        {
            var x = Gaussian(128 * 1536, 4, 2f);
            var y = new float[x.Length];
            var dy = Gaussian(x.Length, 5);
            cases.Add(("gelu fwd 128x1536", () => Gelu.Forward(x, y)));
            cases.Add(("gelu bwd 128x1536", () => Gelu.Backward(x, dy, y)));
        }

        // Depthwise conv of one head's v (16x16 grid, 64 channels) read in place from the qkv rows (stride 1152).
        {
            const int grid = 16, c = 64, xs = 1152;
            var x = Gaussian((grid * grid - 1) * xs + c, 6);
            var taps = Gaussian(9 * 384, 7, 0.3f);
            var bias = Gaussian(c, 8);
            var y = new float[(grid * grid - 1) * 384 + c];
            var dx = new float[x.Length];
            var dTaps = new float[9 * 384];
            var dBias = new float[c];
            cases.Add(("dwc fwd 16x16x64", () => DepthwiseConv3x3.Forward(x, xs, taps, 384, bias, y, 384, grid, grid, c, accumulate: true)));
            cases.Add(("dwc bwd 16x16x64", () => DepthwiseConv3x3.BackwardAccumulate(x, xs, taps, 384, y, 384, dx, dTaps, dBias, grid, grid, c)));
        }

        // The fused mediator core for one (image, head) at 16x16 tokens, hd 64.
        foreach (int medGrid in new[] { 2, 3, 4, 8 })
        {
            const int grid = 16, hd = 64, d = 384, N = grid * grid;
            int n = medGrid * medGrid;
            var qkv = Gaussian(N * 3 * d, 9);
            var b1t = Gaussian(N * n, 10);
            var b2 = Gaussian(N * n, 11);
            var taps = Gaussian(9 * d, 12, 0.3f);
            var dwcBias = Gaussian(hd, 13);
            var tokens = new float[n * d];
            var a1 = new float[n * N];
            var a2 = new float[N * n];
            var vm = new float[n * hd];
            var o = new float[N * d];
            cases.Add(($"mediator core n={n}", () => MediatorCoreKernel.Forward(qkv, qkv.AsSpan(d), qkv.AsSpan(2 * d), 3 * d, b1t, b2,
                taps, d, dwcBias, tokens, d, a1, a2, vm, o, d, grid, grid, medGrid, hd, 0.125f)));
        }

        // LayerNorm + adaLN modulation of 4 images' tokens (1024 rows x 384).
        {
            const int rows = 1024, d = 384, batch = 4;
            var x = new Tensor(Gaussian(rows * d, 14, 2f), rows, d);
            var mod = new Tensor(Gaussian(batch * 6 * d, 15), batch, 6 * d);
            var y = new Tensor(rows, d);
            var norm = new AdaLayerNorm(d);
            norm.Prepare(rows);
            cases.Add(("adaLN fwd 1024x384", () => norm.ForwardRows(x, mod, 0, d, y, rows / batch, 0, rows)));
        }

        // AdamW over 4M parameters in 4 tensors.
        {
            var ps = Enumerable.Range(0, 4).Select(i => new Parameter($"p{i}", [1024, 1024])).ToArray();
            foreach (var p in ps)
            {
                Gaussian(p.Value.Length, 16).CopyTo(p.Value.Span);
                Gaussian(p.Value.Length, 17, 1e-3f).CopyTo(p.Grad!.Span);
            }
            var opt = new AdamW(ps, lr: 1e-4, weightDecay: 0.01);
            cases.Add(("adamw 4x1M", opt.Update));
        }

        var sb = new StringBuilder();
        sb.AppendLine($"kernels, 1 thread, CPU us per call (median and least of {rounds} rounds); Vector512 {(Vector512.IsHardwareAccelerated ? "on" : "off")}, " +
            $"Vector256 {(Vector256.IsHardwareAccelerated ? "on" : "off")}, Vector128 {(Vector128.IsHardwareAccelerated ? "on" : "off")}");
        foreach (var (name, body) in cases)
        {
            var (median, min) = Time(body, rounds);
            sb.AppendLine($"{name,-26} {median,10:F1} {min,10:F1}");
        }
        return sb.ToString();
    }
}
