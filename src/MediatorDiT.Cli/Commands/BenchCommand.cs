using System.CommandLine;
using MediatorDiT.Cli.Rendering;
using MediatorDiT.Evaluation.Performance;

namespace MediatorDiT.Cli.Commands;

/// <summary>`mdit bench`: the performance figures of docs/PERFORMANCE.md on this machine, as a table and optionally JSON.</summary>
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
        var device = DeviceOption.Create("the benchmark");
        var command = new Command("bench", "Measure SGEMM, SiT-S/2 forward and training throughput, mediator vs full attention, thread scaling and peak memory.")
        {
            threads, quick, json, noLarge, noXl, breakdown, memoryOnly, device,
        };
        command.SetAction((parse, token) => CliApp.Guard(() =>
        {
            DeviceOption.Select(parse, device, "the benchmark");
            int t = parse.GetValue(threads);
            string? jsonPath = parse.GetValue(json);
            if (jsonPath is not null) CliApp.OutputFile(jsonPath);
            var options = new PerformanceOptions(t, parse.GetValue(quick), !parse.GetValue(noLarge), !parse.GetValue(noXl), parse.GetValue(breakdown),
                Timings: !parse.GetValue(memoryOnly));
            var report = PerformanceSuite.Run(options, new ImmediateProgress<string>(step => Console.Error.WriteLine($"  measuring {step} ...")), token);
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
}
