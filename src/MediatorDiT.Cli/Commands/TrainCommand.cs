using System.CommandLine;
using MediatorDiT.Cli.Launch;
using MediatorDiT.Cli.Rendering;
using MediatorDiT.Training;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit train`: trains a SiT with mediator (or full) attention. Settings: defaults, then --config, then
/// the options given here. --resume RUN_DIR continues a run bit for bit; a new run needs an empty folder.
/// Ctrl+C / SIGTERM saves a checkpoint and exits with 130. Under a launcher (mpiexec, srun, torchrun-style
/// variables; see <see cref="LaunchEnvironment"/>) the processes train one run data-parallel: rank 0 writes the run
/// folder and reports, the others stay quiet unless they fail.
/// </summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "training config JSON (snake_case keys, see docs/TRAINING.md)" };
        var output = new Option<string?>("--out") { Description = "run folder (default runs/<dataset>-<time>)" };
        var resume = new Option<string?>("--resume") { Description = "run folder to continue from its latest checkpoint" };
        var resumeFromValid = new Option<bool>("--resume-from-valid") { Description = "with --resume: if the latest checkpoint fails its checksum or checks, continue from the newest valid one" };
        var initFrom = new Option<string?>("--init-from") { Description = "start a new run from these weights (run checkpoint, ema*.safetensors or official .pt), resized to the run's token grid" };
        var model = new Option<string?>("--model") { Description = "SiT-S/2 ... or custom (with model_config in --config)" };
        var mediators = new Option<string?>("--mediators") { Description = "mediator counts: 16, or 4,16,64 for one shared-weight ladder, or 0 for full attention" };
        var dataset = new Option<string?>("--dataset") { Description = "fashion-mnist, mnist, latents:PATH or folder:PATH" };
        var dataDir = new Option<string?>("--data-dir") { Description = "where built-in datasets are cached" };
        var steps = new Option<long?>("--steps") { Description = "total optimisation steps" }.AtLeast(1L);
        var batch = new Option<int?>("--batch-size") { Description = "images per step" }.BatchSize();
        var lr = new Option<double?>("--lr") { Description = "learning rate" };
        var seed = new Option<ulong?>("--seed") { Description = "seed of data order, noise and initialisation" };
        var ckptEvery = new Option<long?>("--ckpt-every") { Description = "checkpoint every N steps" }.AtLeast(1L);
        var sampleEvery = new Option<long?>("--sample-every") { Description = "sample grid from the EMA model every M steps (0 = never)" }.AtLeast(0L);
        var evalEvery = new Option<long?>("--eval-every") { Description = "score 200 samples of the EMA and raw weights every N steps with the dataset's classifier into eval.jsonl (0 = never; built-in datasets)" }.AtLeast(0L);
        var threads = new Option<int?>("--threads") { Description = "compute threads of this process, per rank under a launcher (default: all cores)" }.Threads();
        var gradShards = new Option<int?>("--grad-shards") { Description = "parts of each batch whose gradients are summed in order (fixed for a run; the number of ranks must divide it)" }.AtLeast(1);
        var noProgress = new Option<bool>("--no-progress") { Description = "plain log lines instead of a progress bar" };
        var device = new DeviceOptions("training");
        var command = new Command("train", "Train a diffusion transformer (SiT transport) on a dataset.")
        {
            config, output, resume, resumeFromValid, initFrom, model, mediators, dataset, dataDir, steps, batch, lr, seed, ckptEvery, sampleEvery, evalEvery, threads, gradShards, noProgress,
        };
        device.AddTo(command);
        var limitOptions = new InputLimitOptions(command, arrays: true);
        command.SetAction((parse, token) => CliApp.Guard(() =>
        {
            var launch = LaunchEnvironment.Detect();
            if (launch.WorldSize == 1) return Train(parse, LaunchEnvironment.Single, SingleProcessCommunicator.Instance, token);
            var failure = new RankFailureExit(launch.Rank);
            ICommunicator comm = launch.Connect(failure.Exit);
            int code;
            try
            {
                code = Train(parse, launch, comm, token);
            }
            catch (Exception e)
            {
                return Stop(e, comm, failure);
            }
            comm.Dispose();
            return code;
        }, token));
        return command;

        int Train(ParseResult parse, LaunchEnvironment launch, ICommunicator comm, CancellationToken token)
        {
            bool root = comm.Rank == 0;
            var (settings, cuda) = device.OpenForTraining(parse);
            using var cudaDevice = cuda;
            using var compute = settings.Device.ApplyTo(Tensors.ComputeContext.WithThreads(parse.GetValue(threads))).Use();
            string? resumeDir = parse.GetValue(resume);
            string? outDir = parse.GetValue(output);
            if (resumeDir is not null && outDir is not null && !SameFolder(resumeDir, outDir))
                throw new MediatorDiTException($"--resume continues the run in '{resumeDir}' and writes there; --out '{outDir}' names another folder, so leave --out out (or give the same folder).");
            if (parse.GetValue(resumeFromValid) && resumeDir is null)
                throw new MediatorDiTException("--resume-from-valid only applies to --resume RUN_DIR.");
            TrainConfig cfg = new();
            string? configPath = parse.GetValue(config) ?? (resumeDir is not null ? Path.Combine(resumeDir, "config.json") : null);
            // On resume the other ranks train rank 0's config; they need not see the run folder.
            if (configPath is not null && !root && parse.GetValue(config) is null && !File.Exists(configPath)) configPath = null;
            if (configPath is not null)
            {
                if (!File.Exists(configPath))
                    throw new MediatorDiTException(parse.GetValue(config) is not null ? $"config file '{configPath}' does not exist."
                        : Directory.Exists(resumeDir)
                            ? $"--resume {resumeDir}: the folder is not a run folder (it has no config.json); start a run there with --out, or name the run's folder."
                            : $"--resume {resumeDir}: the run folder does not exist.");
                cfg = TrainConfig.FromJson(File.ReadAllText(configPath), configPath);
            }
            if (parse.GetValue(model) is string m) cfg = cfg with { Model = m };
            if (parse.GetValue(initFrom) is string init)
            {
                if (resumeDir is not null) throw new MediatorDiTException("--init-from starts a new run; it cannot be combined with --resume.");
                cfg = cfg with { InitFrom = Path.GetFullPath(init) };
            }
            if (parse.GetValue(mediators) is string ms) cfg = cfg with { Mediators = ParseCounts(ms) };
            if (parse.GetValue(dataset) is string ds) cfg = cfg with { Dataset = ds };
            if (parse.GetValue(dataDir) is string dd) cfg = cfg with { DataDir = dd };
            if (parse.GetValue(steps) is long st) cfg = cfg with { Steps = st };
            if (parse.GetValue(batch) is int b) cfg = cfg with { BatchSize = b };
            if (parse.GetValue(lr) is double l) cfg = cfg with { LearningRate = l };
            if (parse.GetValue(seed) is ulong s) cfg = cfg with { Seed = s };
            if (parse.GetValue(ckptEvery) is long ce) cfg = cfg with { CheckpointEvery = ce };
            if (parse.GetValue(sampleEvery) is long se) cfg = cfg with { SampleEvery = se };
            if (parse.GetValue(evalEvery) is long ee) cfg = cfg with { EvalEvery = ee };
            if (parse.GetValue(gradShards) is int gs) cfg = cfg with { GradShards = gs };
            string runDir = resumeDir ?? outDir ?? Path.Combine("runs", $"{cfg.Dataset.Split(':')[0]}-{DateTime.Now:yyyyMMdd-HHmmss}");

            var limits = limitOptions.Read(parse);
            using var renderer = ProgressRenderer.Create(parse.GetValue(noProgress) || !root);
            var result = new Trainer().Run(cfg, runDir, resumeDir is not null, new Trainer.Options
            {
                Progress = new ImmediateProgress<TrainingProgress>(p => renderer.Report(p.Step, p.TotalSteps,
                    $"loss {p.Loss:F4}  {p.ImagesPerSecond:F1} img/s  lr {p.LearningRate:G3}", p.Remaining)),
                Messages = new ImmediateProgress<string>(renderer.Message),
                OnSample = SampleHooks.GridWriter(renderer),
                ResumeFromValid = parse.GetValue(resumeFromValid),
                Limits = limits,
                Compute = Tensors.ComputeContext.Current,
                Communicator = comm,
                Backend = cuda is null ? null : transport => new Cuda.Training.DeviceTrainingBackend(cuda.Accelerator, transport, settings.Precision, comm,
                    NcclExchange(cuda, comm, renderer.Message), settings.FullAttention),
            }, token);
            renderer.Done();
            if (!root) return 0;
            // A resumed run already at its last step trains nothing, so there is no loss to report.
            Console.WriteLine(double.IsNaN(result.LastLoss)
                ? $"no steps run; already at step {result.Step} of {cfg.Steps} in {result.RunDir}"
                : $"trained to step {result.Step} (last loss {result.LastLoss:F4}) in {result.RunDir}");
            foreach (var f in result.ExportedWeights) Console.WriteLine($"EMA weights: {f}");
            return 0;
        }
    }

    /// <summary>
    /// With several ranks on CUDA devices, the part gradients summed on the devices over NCCL (the same additions as
    /// through the host); null, said once, where some rank cannot load NCCL: they go through the host then.
    /// </summary>
    private static Cuda.Distributed.DeviceExchange? NcclExchange(Cuda.CudaDevice device, ICommunicator comm, Action<string> say)
    {
        if (comm.Size == 1) return null;
        var nccl = Cuda.Distributed.NcclTransport.TryCreate(device.Accelerator, comm, out string? problem);
        if (nccl is null)
        {
            if (comm.Rank == 0) say($"the gradients go through the host: {problem}");
            return null;
        }
        return new Cuda.Distributed.DeviceExchange(nccl) { OwnsTransport = true };
    }

    /// <summary>
    /// How a rank of a data-parallel run ends after <paramref name="e"/>: a stop every rank agreed on is stated
    /// once (by rank 0 or the failing rank) and the ranks exit together; a failure only this rank saw is stated and
    /// ends the whole job (<see cref="ICommunicator.Abort"/>), so no rank waits for it.
    /// </summary>
    private static int Stop(Exception e, ICommunicator comm, RankFailureExit failure)
    {
        switch (e)
        {
            case RunStoppedException { Quiet: true }:
                comm.Dispose();
                return 1;
            case RunStoppedException stopped:
                Console.Error.WriteLine($"{CliApp.ErrorLine(stopped.InnerException ?? stopped).Line}");
                comm.Dispose();
                return 1;
            case OperationCanceledException:
                // Every rank stopped at the same step and rank 0 wrote the checkpoint.
                if (comm.Rank == 0) Console.Error.WriteLine("cancelled.");
                comm.Dispose();
                return 130;
            case RankFailureException:
                failure.Exit(e.Message);
                return 1;
            default:
                Console.Error.WriteLine($"{CliApp.ErrorLine(e).Line.Replace("error: ", $"error: rank {comm.Rank}: ", StringComparison.Ordinal)}");
                Console.Error.Flush();
                comm.Abort(1);
                return 1;
        }
    }

    private static bool SameFolder(string a, string b) =>
        string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(a)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(b)),
            OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);

    internal static int[] ParseCounts(string text)
    {
        if (text.Trim() == "0") return [];
        return OptionValues.Integers(text, "--mediators", "comma-separated mediator counts such as 4,16,64 (or 0 for full attention)");
    }
}
