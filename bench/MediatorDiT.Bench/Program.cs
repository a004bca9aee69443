using MediatorDiT.Bench;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

// SiT-S/2 at 256 tokens (32x32x4 latents): forward (batch 4) and training step (batch 8), full attention
// and 16 mediators, next to this machine's SGEMM rate measured in the same run with the same threads.
// Extra reports: `sampling` (one model vs a ladder, one vs two network calls per SDE step), `vae` (decode),
// `eval` (the evaluation classifier and metrics), `thresholds` (the switch-ratio sweep with shared
// prefixes vs independent runs).
int threads = args.Length > 0 && int.TryParse(args[0], out int t) ? t : Environment.ProcessorCount;
if (args.Contains("sampling")) { Console.WriteLine(SamplingBenchmark.Run()); return; }
if (args.Any(a => a.StartsWith("pretrained-"))) { Console.Write(PretrainedBenchmark.Run(args, threads)); return; }
if (args.Contains("thresholds")) { ComputeSettings.Threads = threads; Console.WriteLine(ThresholdBenchmark.Run()); return; }
if (args.Contains("vae")) { Console.WriteLine(VaeBenchmark.Run(threads: threads)); return; }
if (args.Contains("train")) { Console.WriteLine(TrainingBenchmark.Run(threads)); return; }
if (args.Contains("eval")) { Console.WriteLine(EvaluationBenchmark.Run(threads)); return; }
ComputeSettings.Threads = threads;
Console.WriteLine($"threads {threads}, GEMM backend {Gemm.Backend}, OpenBLAS {(Gemm.OpenBlasAvailable ? "present" : "absent")}, " +
                  $"Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}");
double sgemm = SgemmBenchmark.MeasureGflops(1024, 1024, 1024, Gemm.Backend, threads);
Console.WriteLine($"SGEMM 1024^3: {sgemm:F1} GFLOP/s");
Console.WriteLine();
Console.WriteLine($"{"case",-24} {"batch",5} {"median s",10} {"images/s",10} {"GFLOP/s",9} {"of SGEMM",9}");
foreach (int mediators in new[] { 0, 16 })
{
    var config = ModelRegistry.Get("SiT-S/2", 256, mediators);
    foreach (var (batch, training) in new[] { (4, false), (8, true) })
    {
        var r = ModelBenchmark.Measure(config, batch, training);
        Console.WriteLine($"{r.Name,-24} {r.Batch,5} {r.MedianSeconds,10:F4} {r.ImagesPerSecond,10:F2} {r.GflopsPerSecond,9:F1} {r.GflopsPerSecond / sgemm,9:P0}");
    }
}
