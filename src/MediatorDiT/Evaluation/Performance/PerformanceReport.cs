using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MediatorDiT.Evaluation.Performance;

/// <summary>One timed case: median seconds per call and achieved GFLOP/s against the SGEMM rate.</summary>
/// <param name="Name">the case, e.g. "forward m16"</param>
/// <param name="Tokens">tokens per image</param>
/// <param name="Mediators">0 for full attention</param>
/// <param name="Batch">images per call</param>
/// <param name="Training">a training step (forward, backward, AdamW) rather than a forward</param>
/// <param name="MedianSeconds">median wall seconds per call</param>
/// <param name="ImagesPerSecond">Batch / MedianSeconds</param>
/// <param name="Gflops">achieved GFLOP/s (multiply and add counted apart)</param>
/// <param name="OfSgemm">Gflops as a fraction of the SGEMM rate (on a device: of its product rate at the same precision)</param>
/// <param name="OfPeak">on a device whose peak is known: Gflops as a fraction of it; else null</param>
public sealed record CaseResult(string Name, int Tokens, int Mediators, int Batch, bool Training, double MedianSeconds,
    double ImagesPerSecond, double Gflops, double OfSgemm, double? OfPeak = null);

/// <summary>One operation's share of a step (<see cref="MediatorDiT.Tensors.OpProfiler"/>); nested names overlap.</summary>
public sealed record OpTime(string Name, double Seconds, double Share, long Calls);

/// <summary>Everything <see cref="PerformanceSuite"/> measured, as a table or JSON.</summary>
public sealed class PerformanceReport
{
    /// <summary>Threads the figures were measured with.</summary>
    public int Threads { get; set; }
    /// <summary>Logical processors of the machine.</summary>
    public int ProcessorCount { get; set; }
    /// <summary>The vector instruction sets found, e.g. "AVX2, FMA, AVX-512F, Vector512 on".</summary>
    public string CpuFeatures { get; set; } = "";
    /// <summary>The matrix-product backend in use.</summary>
    public string GemmBackend { get; set; } = "";
    /// <summary>Whether the system OpenBLAS was found.</summary>
    public bool OpenBlas { get; set; }
    /// <summary>Whether the run used the quick settings (fewer rounds).</summary>
    public bool Quick { get; set; }
    /// <summary>
    /// The 1024^3 SGEMM rate in GFLOP/s at <see cref="Threads"/> threads, the yardstick of every case; on a device, its
    /// <see cref="GemmSize"/>^3 product rate at <see cref="Precision"/>.
    /// </summary>
    public double SgemmGflops { get; set; }
    /// <summary>n of the yardstick's n^3 product (1024).</summary>
    public int GemmSize { get; set; } = 1024;
    /// <summary>The device the cases ran on, e.g. "cuda:0 (NVIDIA H200)"; null: the CPU.</summary>
    public string? Device { get; set; }
    /// <summary>On a device: the matrix products' number format, "fp32" or "bf16"; null on the CPU.</summary>
    public string? Precision { get; set; }
    /// <summary>On a device: how the full-attention cases ran their core, "tiles" or "fused"; null on the CPU.</summary>
    public string? FullAttentionCore { get; set; }
    /// <summary>On a device, when the cores were compared: the core the full-attention cases also ran on, else null.</summary>
    public string? OtherFullAttentionCore { get; set; }
    /// <summary>The full-attention cases on <see cref="OtherFullAttentionCore"/>, timed interleaved with <see cref="Cases"/> (names end in the core).</summary>
    public List<CaseResult> OtherCoreCases { get; } = [];
    /// <summary>
    /// When the cores were compared: by full-attention case name ("forward full", "train step full", "forward full 4096"),
    /// its time with the tiles over its time with the fused core (median of paired rounds; above 1: the fused core is faster).
    /// </summary>
    public Dictionary<string, double> FusedSpeedups { get; } = [];
    /// <summary>On a device whose peak is known: the vendor's peak at <see cref="Precision"/> in GFLOP/s; else null.</summary>
    public double? PeakGflops { get; set; }
    /// <summary>What <see cref="PeakGflops"/> is, e.g. "H200 SXM dense bf16 tensor-core peak"; null when unknown.</summary>
    public string? PeakDescription { get; set; }
    /// <summary>Two threads of independent scalar work over one (2.0: two free cores; near 1: the host is busy).</summary>
    public double TwoCoreCheck { get; set; }
    /// <summary>The timed cases, in the order run.</summary>
    public List<CaseResult> Cases { get; } = [];
    /// <summary>Forward time of 16 mediators over full attention at 256 tokens (median of paired rounds).</summary>
    public double MediatorTimeRatio256 { get; set; }
    /// <summary>The same ratio in FLOPs.</summary>
    public double MediatorFlopRatio256 { get; set; }
    /// <summary>Forward at batch 4: time with 1 thread over time with <see cref="Threads"/>; null when Threads is 1.</summary>
    public double? ThreadSpeedup { get; set; }
    /// <summary>Full attention time over 64-mediator time at 4,096 tokens.</summary>
    public double? Mediator4096Speedup { get; set; }
    /// <summary>Managed bytes allocated by one warmed-up forward (full, m16, batch 4) and training step (full, batch 8).</summary>
    public long ForwardAllocatedBytes { get; set; }
    /// <summary>Managed bytes allocated by one warmed-up forward of the 16-mediator model (batch 4).</summary>
    public long MediatorForwardAllocatedBytes { get; set; }
    /// <summary>Managed bytes allocated by one warmed-up training step (full attention, batch 8).</summary>
    public long TrainStepAllocatedBytes { get; set; }
    /// <summary>Process peak resident bytes after the 4,096-token full-attention forward; null when not measured.</summary>
    public long? Large4096PeakBytes { get; set; }
    /// <summary>How far that forward raised the peak above the resident size before it; null when not measured.</summary>
    public long? Large4096GrowthBytes { get; set; }
    /// <summary>Float32 bytes of SiT-XL/2's weights; null when not measured.</summary>
    public long? XlWeightBytes { get; set; }
    /// <summary>Process peak resident bytes while sampling with SiT-XL/2 (batch 1, guidance); null when not measured.</summary>
    public long? XlSamplingPeakBytes { get; set; }
    /// <summary>Resident bytes before the XL model was built; null when not measured.</summary>
    public long? XlBaselineBytes { get; set; }
    /// <summary>Per-operation times of each 256-token case by case name (with <c>Breakdown</c>).</summary>
    public Dictionary<string, IReadOnlyList<OpTime>> Breakdowns { get; } = [];
    /// <summary>1024^3 SGEMM on one thread in CPU time (with <c>Breakdown</c>).</summary>
    public double? SgemmThreadCpuGflops { get; set; }
    /// <summary>The 256-token cases on one thread in CPU time, against <see cref="SgemmThreadCpuGflops"/> (with <c>Breakdown</c>).</summary>
    public List<CaseResult> ThreadCpuCases { get; } = [];

    /// <summary>The report as plain-text lines, as <c>mdit bench</c> prints it.</summary>
    public string ToTable()
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        if (Device is null)
            sb.AppendLine(ci, $"threads {Threads} of {ProcessorCount} cores; CPU {CpuFeatures}; GEMM {GemmBackend}{(OpenBlas ? " (OpenBLAS present)" : "")}{(Quick ? "; quick run" : "")}");
        else
            sb.AppendLine(ci, $"device {Device}, {Precision} matrix products by {GemmBackend}, full attention's core as {FullAttentionCore}" +
                              $"{(OtherFullAttentionCore is null ? "" : $" (and as {OtherFullAttentionCore}, compared)")}; " +
                              $"host {ProcessorCount} cores{(Quick ? "; quick run" : "")}");
        if (Cases.Count > 0)
        {
        if (Device is null) sb.AppendLine(ci, $"SGEMM 1024^3: {SgemmGflops:F1} GFLOP/s; two-core check {TwoCoreCheck:F2} (2.00 = two free cores)");
        else
            sb.AppendLine(ci, $"GEMM {GemmSize}^3 ({Precision}) on the device: {SgemmGflops:F1} GFLOP/s; limit: " +
                              $"{(PeakGflops is double peak ? string.Create(ci, $"{PeakDescription}, {peak:F0} GFLOP/s") : "no peak known for this device")}");
        sb.AppendLine();
        string yardstick = Device is null ? "of SGEMM" : "of GEMM";
        int width = Math.Max(20, Cases.Concat(OtherCoreCases).Max(c => c.Name.Length));
        sb.AppendLine(ci, $"{"case".PadRight(width)} {"tokens",6} {"batch",5} {"median s",9} {"images/s",9} {"GFLOP/s",8} {yardstick,8}{(PeakGflops is null ? "" : $" {"of peak",8}")}");
        foreach (var c in Cases.Concat(OtherCoreCases))
            sb.AppendLine(ci, $"{c.Name.PadRight(width)} {c.Tokens,6} {c.Batch,5} {c.MedianSeconds,9:F4} {c.ImagesPerSecond,9:F2} {c.Gflops,8:F1} {c.OfSgemm,8:P0}" +
                              $"{(c.OfPeak is double share ? string.Create(ci, $" {share,8:P1}") : "")}");
        sb.AppendLine();
        var (small, mediator) = (Cases[0], Cases.Count > 1 ? Cases[1] : Cases[0]);
        sb.AppendLine(ci, $"{mediator.Name["forward ".Length..]} / full forward time at {small.Tokens} tokens: {MediatorTimeRatio256:F3} (FLOPs ratio {MediatorFlopRatio256:F3})");
        if (Device is null)
            sb.AppendLine(ci, $"managed allocation per call: forward full {ForwardAllocatedBytes / 1024.0:F0} KiB, forward m16 {MediatorForwardAllocatedBytes / 1024.0:F0} KiB, " +
                              $"train step full {TrainStepAllocatedBytes / 1024.0:F0} KiB");
        }
        if (FusedSpeedups.Count > 0)
            sb.AppendLine("full attention, fused core over the tiles (time with tiles / time fused, interleaved): " +
                          string.Join(", ", FusedSpeedups.Select(p => $"{p.Key} {p.Value.ToString("F2", ci)}x")));
        if (ThreadSpeedup is { } ts) sb.AppendLine(ci, $"forward batch 4, {Threads} threads vs 1: {ts:F2}x faster");
        if (Mediator4096Speedup is { } ms)
        {
            var longPair = Cases.Where(c => !c.Training).TakeLast(2).ToArray();
            sb.AppendLine(ci, $"{longPair[0].Tokens:N0} tokens: {longPair[1].Mediators} mediators {ms:F2}x faster than full attention");
        }
        if (Large4096PeakBytes is { } lp)
            sb.AppendLine(ci, $"4,096 tokens, full attention, model built + one forward keeping all activations: +{Mib(Large4096GrowthBytes ?? 0)} " +
                              $"(process peak {Mib(lp)}; one 4096 x 4096 score matrix alone is 64 MiB per head)");
        if (XlSamplingPeakBytes is { } xp)
            sb.AppendLine(ci, $"SiT-XL/2 sampling (256 tokens, batch 1, guidance): peak resident {Mib(xp)} (of which {Mib(XlBaselineBytes ?? 0)} " +
                              $"before building the model), weights {Mib(XlWeightBytes ?? 0)}, target below weights + 1 GiB = {Mib((XlWeightBytes ?? 0) + (1L << 30))}");
        if (SgemmThreadCpuGflops is { } cpuRate)
        {
            sb.AppendLine();
            sb.AppendLine(ci, $"one thread, CPU time (steady on a busy machine): SGEMM 1024^3 {cpuRate:F1} GFLOP/s");
            foreach (var c in ThreadCpuCases)
                sb.AppendLine(ci, $"{c.Name,-20} {c.Tokens,6} {c.Batch,5} {c.MedianSeconds,9:F4} {c.ImagesPerSecond,9:F2} {c.Gflops,8:F1} {c.OfSgemm,8:P0}");
        }
        foreach (var (name, ops) in Breakdowns)
        {
            sb.AppendLine();
            sb.AppendLine(ci, $"breakdown: {name} (1 thread, CPU ms per step; nested names overlap)");
            foreach (var op in ops)
                sb.AppendLine(ci, $"  {op.Name,-24} {op.Seconds * 1e3,9:F2} ms {op.Share,7:P1} {op.Calls,6} calls");
        }
        return sb.ToString();
    }

    private static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):F0} MiB");

    /// <summary>Writes the JSON form to <paramref name="path"/> atomically.</summary>
    public void SaveJson(string path) => MediatorDiT.IO.AtomicFile.Write(path, WriteJson);

    /// <summary>Writes the report as indented JSON to <paramref name="stream"/>.</summary>
    /// <param name="stream">The destination.</param>
    public void WriteJson(Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteNumber("threads", Threads);
        w.WriteNumber("processor_count", ProcessorCount);
        w.WriteString("cpu_features", CpuFeatures);
        w.WriteString("gemm_backend", GemmBackend);
        w.WriteBoolean("openblas", OpenBlas);
        w.WriteBoolean("quick", Quick);
        w.WriteString("device", Device);
        w.WriteString("precision", Precision);
        w.WriteString("full_attention_core", FullAttentionCore);
        w.WriteString("other_full_attention_core", OtherFullAttentionCore);
        Optional(w, "peak_gflops", PeakGflops);
        w.WriteString("peak", PeakDescription);
        w.WriteNumber("gemm_size", GemmSize);
        w.WriteNumber("sgemm_1024_gflops", SgemmGflops);
        w.WriteNumber("two_core_check", TwoCoreCheck);
        w.WriteStartArray("cases");
        foreach (var c in Cases) WriteCase(w, c);
        w.WriteEndArray();
        w.WriteStartArray("other_core_cases");
        foreach (var c in OtherCoreCases) WriteCase(w, c);
        w.WriteEndArray();
        w.WriteStartObject("fused_speedups");
        foreach (var (name, speedup) in FusedSpeedups) w.WriteNumber(name, speedup);
        w.WriteEndObject();
        WriteRest(w);
    }

    private static void WriteCase(Utf8JsonWriter w, CaseResult c)
    {
        w.WriteStartObject();
        w.WriteString("name", c.Name);
        w.WriteNumber("tokens", c.Tokens);
        w.WriteNumber("mediators", c.Mediators);
        w.WriteNumber("batch", c.Batch);
        w.WriteBoolean("training", c.Training);
        w.WriteNumber("median_seconds", c.MedianSeconds);
        w.WriteNumber("images_per_second", c.ImagesPerSecond);
        w.WriteNumber("gflops", c.Gflops);
        w.WriteNumber("of_sgemm", c.OfSgemm);
        Optional(w, "of_peak", c.OfPeak);
        w.WriteEndObject();
    }

    private void WriteRest(Utf8JsonWriter w)
    {
        Optional(w, "sgemm_1024_thread_cpu_gflops", SgemmThreadCpuGflops);
        w.WriteStartArray("thread_cpu_cases");
        foreach (var c in ThreadCpuCases) WriteCase(w, c);
        w.WriteEndArray();
        w.WriteNumber("mediator_time_ratio_256", MediatorTimeRatio256);
        w.WriteNumber("mediator_flop_ratio_256", MediatorFlopRatio256);
        w.WriteNumber("forward_allocated_bytes", ForwardAllocatedBytes);
        w.WriteNumber("mediator_forward_allocated_bytes", MediatorForwardAllocatedBytes);
        w.WriteNumber("train_step_allocated_bytes", TrainStepAllocatedBytes);
        Optional(w, "thread_speedup", ThreadSpeedup);
        Optional(w, "mediator64_speedup_4096", Mediator4096Speedup);
        Optional(w, "full_4096_peak_bytes", Large4096PeakBytes);
        Optional(w, "full_4096_growth_bytes", Large4096GrowthBytes);
        Optional(w, "xl_weight_bytes", XlWeightBytes);
        Optional(w, "xl_sampling_peak_bytes", XlSamplingPeakBytes);
        Optional(w, "xl_baseline_bytes", XlBaselineBytes);
        w.WriteStartObject("breakdowns");
        foreach (var (name, ops) in Breakdowns)
        {
            w.WriteStartArray(name);
            foreach (var op in ops)
            {
                w.WriteStartObject();
                w.WriteString("op", op.Name);
                w.WriteNumber("seconds", op.Seconds);
                w.WriteNumber("share", op.Share);
                w.WriteNumber("calls", op.Calls);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void Optional(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }

    private static void Optional(Utf8JsonWriter w, string name, long? value)
    {
        if (value is { } v) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }
}
