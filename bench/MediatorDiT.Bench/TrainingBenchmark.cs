using System.Diagnostics;
using System.Globalization;
using System.Text;
using MediatorDiT.Data;
using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Bench;

/// <summary>
/// Whole optimisation steps of the trainer (transport sampling, forward, loss, backward, clipping norm,
/// AdamW, EMA), on random data so that data loading is left out: SiT-S/2 at 256 tokens (batch 8, full
/// attention and 16 mediators), the default Fashion-MNIST recipe (TrainConfig's defaults: the default
/// network, 16 mediators, batch 64, 1x32x32 images) and configs/fashion-mnist/shared.json (hidden 96, depth 4,
/// the 4/16/64 shared-weight ladder, one member drawn per step: every member warmed up first, then the mean of
/// 15 steps against the members' mean FLOPs). Achieved GFLOP/s counts a step as 3 forwards
/// (FlopCounter's multiply-accumulates x 2), next to this machine's 1024^3 SGEMM rate measured in the same run.
/// </summary>
public static class TrainingBenchmark
{
    public sealed record Result(string Name, int Batch, double MedianSeconds, double ImagesPerSecond, double GflopsPerSecond);

    public static string Run(int threads)
    {
        ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
        var sb = new StringBuilder();
        double sgemm = SgemmBenchmark.MeasureGflops(1024, 1024, 1024, Gemm.Backend, threads);
        sb.AppendLine(CultureInfo.InvariantCulture, $"threads {threads}, GEMM backend {Gemm.Backend}, two-core ratio {SgemmBenchmark.TwoCoreRatio():F2}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"SGEMM 1024^3: {sgemm:F1} GFLOP/s");
        sb.AppendLine();
        sb.AppendLine($"{"case",-36} {"batch",5} {"s/step",8} {"images/s",9} {"GFLOP/s",8} {"of SGEMM",9}");
        var cases = new List<(string Name, TrainConfig Config, SampleShape Shape, int Classes, int Repeats)>();
        // One forward and backward per batch (grad_shards 1), as the history of these figures measured; the last
        // case takes the default 8 parts of a batch of 64 (what a new run does, docs/DISTRIBUTED.md).
        var s2 = new TrainConfig { Model = "SiT-S/2", BatchSize = 8, GradShards = 1 };
        cases.Add(("SiT-S/2 256 tokens, full", s2 with { Mediators = [] }, new SampleShape(4, 32, 32), 1000, 5));
        cases.Add(("SiT-S/2 256 tokens, 16 mediators", s2 with { Mediators = [16] }, new SampleShape(4, 32, 32), 1000, 5));
        cases.Add(("Fashion-MNIST default recipe", new TrainConfig { GradShards = 1 }, new SampleShape(1, 32, 32), 10, 3));
        cases.Add(("Fashion-MNIST recipe, 8 parts", new TrainConfig(), new SampleShape(1, 32, 32), 10, 3));
        cases.Add(("fashion-mnist/shared.json (4/16/64)", SharedRecipe() with { GradShards = 1 }, new SampleShape(1, 32, 32), 10, 15));
        foreach (var c in cases)
        {
            var r = Measure(c.Name, c.Config, c.Shape, c.Classes, c.Repeats);
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Name,-36} {r.Batch,5} {r.MedianSeconds,8:F3} {r.ImagesPerSecond,9:F2} {r.GflopsPerSecond,8:F1} {r.GflopsPerSecond / sgemm,9:P0}");
        }
        var resolved = Trainer.Resolve(new TrainConfig(), new SampleShape(1, 32, 32), 10).ModelConfig!;
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"default recipe network: hidden {resolved.HiddenSize}, depth {resolved.Depth}, heads {resolved.NumHeads}, patch {resolved.PatchSize}, {resolved.NumTokens} tokens, " +
            $"{FlopCounter.Count(resolved).GFlops:F3} GMAC per image forward");
        return sb.ToString();
    }

    /// <summary>
    /// configs/fashion-mnist/shared.json, the recipe of the Fashion-MNIST ladder (SiT, 32x32x1, patch 2, hidden 96,
    /// depth 4, 4 heads, a shared-weight ladder of 4/16/64 mediators, batch 64, EMA 0.999).
    /// </summary>
    public static TrainConfig SharedRecipe() => Recipe(DefaultRecipe);

    /// <summary>The recipe <see cref="RunRecipe"/> times unless told otherwise.</summary>
    public const string DefaultRecipe = "configs/fashion-mnist/shared.json";

    /// <summary>
    /// A training config of the repository (<paramref name="relative"/>, e.g. configs/fashion-mnist/full.json), found
    /// upwards from the working directory or the benchmark's folder.
    /// </summary>
    public static TrainConfig Recipe(string relative)
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string path = Path.Combine(dir.FullName, relative);
                if (File.Exists(path)) return TrainConfig.FromJson(File.ReadAllText(path), path);
            }
        throw new FileNotFoundException($"{relative} was not found above {Directory.GetCurrentDirectory()}; run the benchmark inside the repository.");
    }

    /// <summary>
    /// Only one recipe's steps (<paramref name="recipe"/>, by default <see cref="DefaultRecipe"/>): <paramref name="steps"/> trainer steps after a forward and backward of every
    /// ladder member (so no member allocates its buffers while timed) and two warm-up steps, each timed
    /// in wall time and in the calling thread's CPU time (steadier on a shared machine; with one thread every
    /// kernel runs on the calling thread), then the means as images/s (a member is drawn per step, so the mean is the
    /// expected step; the medians are printed too); <paramref name="parts"/> (when positive) replaces the recipe's grad_shards; with <paramref name="breakdown"/>
    /// also the per-operation CPU time of those steps (nested names overlap).
    /// </summary>
    public static string RunRecipe(int threads, int steps, bool breakdown, int parts = 0, string recipe = DefaultRecipe)
    {
        ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
        var requested = Recipe(recipe);
        if (parts > 0) requested = requested with { GradShards = parts };
        var config = Trainer.Resolve(requested, new SampleShape(1, 32, 32), 10).Validate();
        using var run = new RecipeRun(config, new SampleShape(1, 32, 32), 10);
        run.WarmMembers();
        run.Step();
        run.Step();
        var wall = new double[steps];
        var cpu = new double[steps];
        bool savedClock = OpProfiler.ThreadCpuTime;
        OpProfiler.ThreadCpuTime = true;
        OpProfiler.Reset();
        OpProfiler.Enabled = breakdown;
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        try
        {
            for (int r = 0; r < steps; r++)
            {
                long c0 = OpProfiler.Now();
                var sw = Stopwatch.StartNew();
                using (OpProfiler.Time("step")) run.Step();
                wall[r] = sw.Elapsed.TotalSeconds;
                cpu[r] = (double)(OpProfiler.Now() - c0) / Stopwatch.Frequency;
            }
        }
        finally
        {
            OpProfiler.Enabled = false;
            OpProfiler.ThreadCpuTime = savedClock;
        }
        allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated;
        double Median(double[] v) => v.Order().ElementAt(v.Length / 2);
        var sb = new StringBuilder();
        int batch = config.BatchSize;
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"recipe {recipe}, threads {threads}, GEMM backend {Gemm.Backend}, {config.GradShards} part(s) per batch, {steps} steps after a forward and backward of each member and 2 warm-up steps");
        // The members cost different amounts and one is drawn per step, so the step times are not one population:
        // the mean is the expected step (the figure to compare), the median only a single member's.
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"mean wall {wall.Average():F3} s/step = {batch / wall.Average():F2} images/s; mean thread CPU {cpu.Average():F3} s/step = {batch / cpu.Average():F2} images/s; " +
            $"{allocated / (double)steps / 1e6:F1} MB allocated per step");
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"median wall {Median(wall):F3} s/step, median thread CPU {Median(cpu):F3} s/step");
        sb.AppendLine(CultureInfo.InvariantCulture, $"cpu s/step: {string.Join(" ", cpu.Select(c => c.ToString("F3", CultureInfo.InvariantCulture)))}");
        if (breakdown)
        {
            double stepTotal = cpu.Sum();
            sb.AppendLine();
            sb.AppendLine($"{"operation (thread CPU time per step; nested names overlap)",-58} {"ms",8} {"share",7} {"calls",7} {"MB alloc",9}");
            var bytes = OpProfiler.AllocationSnapshot().ToDictionary(e => e.Name, e => e.Bytes);
            foreach (var (name, seconds, calls) in OpProfiler.Snapshot())
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"{name,-58} {seconds / steps * 1e3,8:F1} {seconds / stepTotal,7:P1} {calls / (double)steps,7:F0} {bytes[name] / (double)steps / 1e6,9:F2}");
        }
        return sb.ToString();
    }

    /// <summary>
    /// A network, its EMA, AdamW, random data and one CPU training backend for whole trainer steps, set up as the
    /// trainer sets them up: one backend for the whole run, so its part buffers (grad_shards x the parameters) are
    /// allocated once, not per step.
    /// </summary>
    private sealed class RecipeRun : IDisposable
    {
        private readonly TrainableNetwork _network, _ema;
        private readonly AdamW _optimizer;
        private readonly Transport _transport = new();
        private readonly CpuTrainingBackend _backend;
        private readonly RandomSource _rng = new(3);
        private readonly Tensor _x1;
        private readonly int[] _labels;
        private readonly TrainConfig _config;
        private long _step;

        public RecipeRun(TrainConfig config, SampleShape shape, int classes)
        {
            _config = config;
            var modelConfig = config.ModelConfig!;
            _network = TrainableNetwork.Create(modelConfig, config.Mediators);
            _ema = TrainableNetwork.Create(modelConfig, config.Mediators);
            foreach (var member in _network.Members) ModelInitializer.Initialize(member, 1);
            // Random (not zero) adaLN and output weights, so every path does real work.
            var init = new RandomSource(2);
            foreach (var p in _network.Parameters)
                if (p.Trainable && (p.Name.Contains("adaLN") || p.Name.StartsWith("final_layer")))
                    init.FillGaussian(p.Value.Span, 0, 0.02f);
            Ema.CopyWeights(_network, _ema);
            _optimizer = new AdamW(_network.Parameters, config.LearningRate, weightDecay: config.WeightDecay);
            _backend = new CpuTrainingBackend(_transport);
            _backend.Attach(_network, _ema, _optimizer);
            _x1 = new Tensor(config.BatchSize, shape.Channels, shape.Height, shape.Width);
            new RandomSource(4).FillGaussian(_x1.Span, 0, 0.5f);
            _labels = Enumerable.Range(0, config.BatchSize).Select(i => i % classes).ToArray();
        }

        /// <summary>The network's members (one, or a shared ladder's).</summary>
        public IReadOnlyList<SiTModel> Members => _network.Members;

        /// <summary>See <see cref="TrainingBenchmark.WarmMembers"/>.</summary>
        public void WarmMembers() => TrainingBenchmark.WarmMembers(_network, _x1, _labels);

        /// <summary>One step: the transport's draw, then the backend's forward, backward, clipping, AdamW and EMA.</summary>
        public void Step()
        {
            TrainingBatch batch;
            using (OpProfiler.Time("draw")) batch = Trainer.Draw(_network, _transport, _rng, _x1, _labels, _config, _step++);
            _backend.Step(batch);
        }

        public void Dispose() => _backend.Dispose();
    }

    /// <summary>Median seconds of <paramref name="repeats"/> steps after one warm-up step (a ladder: the mean, after every member is warmed).</summary>
    public static Result Measure(string name, TrainConfig requested, SampleShape shape, int classes, int repeats)
    {
        var config = Trainer.Resolve(requested, shape, classes).Validate();
        using var run = new RecipeRun(config, shape, classes);
        bool ladder = run.Members.Count > 1;
        if (ladder) run.WarmMembers();
        run.Step();
        var times = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            var sw = Stopwatch.StartNew();
            run.Step();
            times[r] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        // A ladder draws its member per step, and the members cost different amounts: its figure is the mean
        // step against the members' mean FLOPs (each member equally likely), not the median step.
        double seconds = ladder ? times.Average() : times[repeats / 2];
        double perImage = run.Members.Average(m => FlopCounter.Count(m.Config).PerImage);
        double flops = perImage * 2 * 3 * config.BatchSize;
        return new Result(name, config.BatchSize, seconds, config.BatchSize / seconds, flops / seconds / 1e9);
    }

    /// <summary>
    /// One forward and backward of every member of a ladder (gradients zeroed after), so each member's activation
    /// buffers exist before timing, as they do a few steps into a run; weights and optimizer are untouched.
    /// </summary>
    private static void WarmMembers(TrainableNetwork network, Tensor x1, int[] labels)
    {
        var t = Enumerable.Range(0, labels.Length).Select(i => (i + 0.5f) / labels.Length).ToArray();
        foreach (var member in network.Members) member.Backward(member.Forward(x1, t, labels));
        network.ZeroGrad();
    }
}
