using MediatorDiT.Bench;
using MediatorDiT.Evaluation.Performance;
using MediatorDiT.Tensors;

// Default: the suite `mdit bench` runs (SiT-S/2 at 256 tokens, forward batch 4 and training step batch 8,
// full attention and mediators, 4,096 tokens, thread scaling, memory), next to this machine's SGEMM rate
// measured in the same run with the same threads; add `quick`, `breakdown`, `no-large`, `no-xl`.
// Extra reports: `sampling` (one model vs a ladder, one vs two network calls per SDE step), `vae` (decode),
// `gemm` (SGEMM per shape and backend), `gemm-recipe` (1 thread, the shared.json recipe's products), `train` (whole trainer steps), `train-recipe [steps=N] [parts=P] [recipe=CONFIG] [breakdown]`
// (only one config's steps, configs/fashion-mnist/shared.json unless recipe= names another; parts=P overrides its grad_shards; wall and thread CPU time, optionally per operation), `pretrained-memory` and
// `pretrained-speed` (DiT-XL/2 and the VAE), `eval` (the evaluation classifier and metrics), `thresholds`
// (the switch-ratio sweep with shared prefixes vs independent runs), `kernels` (the element and row kernels
// one at a time on one thread), `serve-load [URL]` (20 clients at once against `mdit serve`).
int threads = args.Length > 0 && int.TryParse(args[0], out int t) ? t : Environment.ProcessorCount;
if (args.Contains("sampling")) { Console.WriteLine(SamplingBenchmark.Run()); return; }
if (args.Any(a => a.StartsWith("pretrained-"))) { Console.Write(PretrainedBenchmark.Run(args, threads)); return; }
if (args.Contains("thresholds")) { ComputeContext.Raw = ComputeContext.Default with { Threads = threads }; Console.WriteLine(ThresholdBenchmark.Run()); return; }
if (args.Contains("vae")) { Console.WriteLine(VaeBenchmark.Run(threads: threads)); return; }
if (args.Contains("train-recipe"))
{
    int steps = args.Select(a => a.StartsWith("steps=") && int.TryParse(a[6..], out int n) ? n : 0).Max() is int s && s > 0 ? s : 10;
    int parts = args.Select(a => a.StartsWith("parts=") && int.TryParse(a[6..], out int n) ? n : 0).Max();
    string recipe = args.FirstOrDefault(a => a.StartsWith("recipe="))?[7..] ?? TrainingBenchmark.DefaultRecipe;
    Console.WriteLine(TrainingBenchmark.RunRecipe(threads, steps, args.Contains("breakdown"), parts, recipe));
    return;
}
if (args.Contains("train")) { Console.WriteLine(TrainingBenchmark.Run(threads)); return; }
if (args.Contains("eval")) { Console.WriteLine(EvaluationBenchmark.Run(threads)); return; }
if (args.Contains("kernels")) { Console.Write(KernelBenchmark.Run()); return; }
if (args.Contains("serve-load")) { Console.WriteLine(await ServeLoadBenchmark.Run(args.FirstOrDefault(a => a.StartsWith("http")))); return; }
if (args.Contains("gemm-recipe")) { Console.Write(SgemmBenchmark.RecipeReport()); return; }
if (args.Contains("gemm")) { ComputeContext.Raw = ComputeContext.Default with { Threads = threads }; SgemmBenchmark.Report(); return; }
var options = new PerformanceOptions(threads, Quick: args.Contains("quick"), Large: !args.Contains("no-large"),
    XlMemory: !args.Contains("no-xl"), Breakdown: args.Contains("breakdown"));
var report = PerformanceSuite.Run(options, new Progress<string>(step => Console.Error.WriteLine($"  measuring {step} ...")));
Console.Write(report.ToTable());
