using MediatorDiT.Bench;
using MediatorDiT.Evaluation.Performance;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

// SiT-S/2 at 256 tokens (32x32x4 latents): forward (batch 4) and training step (batch 8), full attention
// and 16 mediators, next to this machine's SGEMM rate measured in the same run with the same threads
// (the suite `mdit bench` runs; add `quick`, `breakdown`, `no-large`, `no-xl`).
// Extra reports: `sampling` (one model vs a ladder, one vs two network calls per SDE step), `vae` (decode).
int threads = args.Length > 0 && int.TryParse(args[0], out int t) ? t : Environment.ProcessorCount;
if (args.Contains("sampling")) { Console.WriteLine(SamplingBenchmark.Run()); return; }
if (args.Contains("vae")) { Console.WriteLine(VaeBenchmark.Run(threads: threads)); return; }
if (args.Contains("gemm")) { ComputeSettings.Threads = threads; SgemmBenchmark.Report(); return; }
var options = new PerformanceOptions(threads, Quick: args.Contains("quick"), Large: !args.Contains("no-large"),
    XlMemory: !args.Contains("no-xl"), Breakdown: args.Contains("breakdown"));
var report = PerformanceSuite.Run(options, new Progress<string>(step => Console.Error.WriteLine($"  measuring {step} ...")));
Console.Write(report.ToTable());
