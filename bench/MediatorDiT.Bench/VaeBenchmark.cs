using System.Diagnostics;
using System.Text;
using MediatorDiT.Models.Vae;
using MediatorDiT.Tensors;

namespace MediatorDiT.Bench;

/// <summary>
/// Stable Diffusion VAE decode of one image (full-size config, random weights): median wall time over
/// timed runs after one warm-up, achieved GFLOP/s counting 2 x the convolutions' multiply-accumulates
/// (the mid-block attention is reported apart and left out of the rate), and memory.
/// </summary>
public static class VaeBenchmark
{
    public static string Run(int imageSize = 256, int repeats = 3, int? threads = null)
    {
        if (threads is int n) ComputeContext.Raw = ComputeContext.Default with { Threads = n };
        var config = AutoencoderKlConfig.StableDiffusion;
        int f = config.DownsampleFactor;
        if (imageSize <= 0 || imageSize % f != 0)
            throw new MediatorDiTException($"the benchmark image size must be a positive multiple of {f}, got {imageSize}.");
        var vae = new AutoencoderKl(config);
        InitializeRandomly(vae, seed: 1);
        int h = imageSize / f;
        var latents = new Tensor(1, config.LatentChannels, h, h);
        new RandomSource(2).FillGaussian(latents.Span);

        var process = Process.GetCurrentProcess();
        var warmup = Stopwatch.StartNew();
        var image = vae.Decode(latents);
        double first = warmup.Elapsed.TotalSeconds;
        var times = new double[Math.Max(1, repeats)];
        for (int r = 0; r < times.Length; r++)
        {
            var sw = Stopwatch.StartNew();
            image = vae.Decode(latents);
            times[r] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        double median = times[times.Length / 2];
        process.Refresh();

        long convMacs = vae.DecodeMultiplyAccumulates(h, h, includeAttention: false);
        long attentionMacs = vae.DecodeMultiplyAccumulates(h, h) - convMacs;
        long weightBytes = vae.Parameters.Sum(p => (long)p.Value.Length) * 4;
        bool finite = image.Span.ToArray().All(float.IsFinite);

        var report = new StringBuilder();
        report.AppendLine($"VAE decode, {imageSize}x{imageSize} px (latent 4x{h}x{h}), full-size SD config, random weights, threads {ComputeContext.Current.Threads}");
        report.AppendLine($"  conv MACs {convMacs / 1e9:F1} G (+ attention {attentionMacs / 1e9:F2} G), weights {weightBytes / 1048576.0:F0} MiB");
        report.AppendLine($"  first run {first:F2} s, median of {times.Length} {median:F2} s -> {2.0 * convMacs / median / 1e9:F1} GFLOP/s (conv)");
        report.AppendLine($"  workspace {vae.Workspace.HeldFloats * 4 / 1048576.0:F0} MiB, process peak working set {process.PeakWorkingSet64 / 1048576.0:F0} MiB, output finite: {finite}");
        return report.ToString();
    }

    /// <summary>Conv and linear weights N(0, 1/fan_in), biases 0, norm scales 1, so activations stay O(1).</summary>
    private static void InitializeRandomly(AutoencoderKl vae, ulong seed)
    {
        var rng = new RandomSource(seed);
        foreach (var p in vae.Parameters)
        {
            var span = p.Value.Span;
            bool isNorm = p.Name.Contains("norm", StringComparison.Ordinal);
            if (p.Value.Rank == 1) span.Fill(isNorm && p.Name.EndsWith(".weight", StringComparison.Ordinal) ? 1f : 0f);
            else rng.FillGaussian(span, 0, 1f / MathF.Sqrt(p.Value.Length / p.Value.Dim(0)));
        }
    }
}
