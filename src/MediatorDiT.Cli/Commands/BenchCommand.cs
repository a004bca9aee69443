using System.CommandLine;
using MediatorDiT.Cli.Rendering;
using MediatorDiT.Cuda.Performance;
using MediatorDiT.Evaluation.Performance;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit bench`: the performance figures of docs/PERFORMANCE.md on this machine, as a table and optionally JSON; with
/// --device cuda[:N] the timed cases on that GPU (<see cref="DevicePerformanceSuite"/>, docs/GPU.md).
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var threads = new Option<int>("--threads") { Description = "threads to use (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount }.Threads();
        var quick = new Option<bool>("--quick") { Description = "a short run: fewer repeats, one SiT-XL/2 step" };
        var json = new Option<string?>("--json") { Description = "also write the figures as JSON to this file" };
        var noLarge = new Option<bool>("--no-large") { Description = "skip the 4,096-token comparison" };
        var noXl = new Option<bool>("--no-xl") { Description = "skip the SiT-XL/2 sampling memory check (builds a 675M-parameter model, ~3 GiB)" };
        var breakdown = new Option<bool>("--breakdown") { Description = "add a per-operation time breakdown of the 256-token cases" };
        var memoryOnly = new Option<bool>("--memory-only") { Description = "only the memory figures (no timings)" };
        var compare = new Option<bool>("--compare-full-attention")
        {
            Description = "on a GPU: time the full-attention cases on both cores (tiles and fused), interleaved, and report the fused core's speedup (bf16; docs/GPU.md)",
        };
        var device = new DeviceOptions("the benchmark");
        var command = new Command("bench", "Measure SGEMM, SiT-S/2 forward and training throughput, mediator vs full attention, thread scaling and peak memory (on a GPU: the same cases against its product rate and peak).")
        {
            threads, quick, json, noLarge, noXl, breakdown, memoryOnly, compare,
        };
        device.AddTo(command);
        command.SetAction((parse, token) => CliApp.Guard(() =>
        {
            var options = Options(parse, threads, quick, noLarge, noXl, breakdown, memoryOnly, device.Device);
            string? jsonPath = parse.GetValue(json);
            bool compareCores = parse.GetValue(compare);
            CheckComparison(compareCores, device.Parse(parse));
            using var cuda = device.OpenDevice(parse, out var settings);
            if (jsonPath is not null) CliApp.OutputFile(jsonPath);
            var progress = new ImmediateProgress<string>(step => Console.Error.WriteLine($"  measuring {step} ..."));
            var report = cuda is null
                ? PerformanceSuite.Run(options, progress, token)
                : DevicePerformanceSuite.Run(cuda.Accelerator, cuda.Name, settings.Precision, options, progress, token, fullAttention: settings.FullAttention, compareCores: compareCores);
            Console.Write(report.ToTable());
            if (jsonPath is not null)
            {
                report.SaveJson(jsonPath);
                Console.WriteLine($"wrote {jsonPath}");
            }
            return 0;
        }, token));
        return command;
    }

    /// <summary>
    /// Refuses --compare-full-attention, before the device opens, where the fused core cannot run: on the cpu, or with
    /// fp32 products (a card below compute capability 8.0 is refused by the suite once it has opened).
    /// </summary>
    private static void CheckComparison(bool compareCores, DeviceSettings settings)
    {
        if (!compareCores) return;
        if (settings.Device.Device == ComputeDevice.Cpu)
            throw new MediatorDiTException($"--compare-full-attention times full attention's cores on a GPU; it does not apply to {settings.What}.");
        if (settings.Precision != DevicePrecision.Bf16)
            throw new MediatorDiTException($"--compare-full-attention times the fused core too, which runs bf16 products only; --precision is {settings.Precision.Name()}.");
    }

    /// <summary>
    /// The suite's options from the command line; on cuda[:N] the CPU-only parts are refused in one sentence
    /// (--breakdown and --memory-only time and measure the CPU kernels), and --no-xl has nothing to skip there.
    /// </summary>
    internal static PerformanceOptions Options(ParseResult parse, Option<int> threads, Option<bool> quick, Option<bool> noLarge, Option<bool> noXl,
        Option<bool> breakdown, Option<bool> memoryOnly, Option<string> device)
    {
        string deviceText = parse.GetValue(device) ?? "cpu";
        bool onDevice = DeviceSelection.Parse(deviceText, "--device").Device != ComputeDevice.Cpu;
        foreach (var (option, what) in new[] { (breakdown, "times the CPU kernels' operations"), (memoryOnly, "measures the CPU process's memory") })
            if (onDevice && parse.GetValue(option))
                throw new MediatorDiTException($"{option.Name} {what}; it does not apply to --device {deviceText.Trim()}.");
        return new PerformanceOptions(parse.GetValue(threads), parse.GetValue(quick), !parse.GetValue(noLarge), !onDevice && !parse.GetValue(noXl),
            parse.GetValue(breakdown), Timings: !parse.GetValue(memoryOnly));
    }
}
