using System.Diagnostics;
using MediatorDiT.Data;
using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Training;

/// <summary>
/// SiT training: x1 from the data, (t, x0) from the transport, the network predicts at x_t, the transport's
/// loss, backward, optional clipping, AdamW with warm-up, EMA. Every random draw comes from one generator
/// whose state is checkpointed and the data order is a function of (seed, step), so a resumed run
/// continues bit for bit. Checkpoints every N steps, at the end and on cancellation.
/// </summary>
public sealed class Trainer
{
    /// <summary>How a run reports, where it computes and what it may read.</summary>
    public sealed record Options
    {
        /// <summary>Receives a report after every logged step.</summary>
        public IProgress<TrainingProgress>? Progress { get; init; }
        /// <summary>Receives one-line notes and warnings (resume, removed temp files, divergence).</summary>
        public IProgress<string>? Messages { get; init; }
        /// <summary>Called every sample_every steps with the EMA network (e.g. to write a sample grid).</summary>
        public Action<TrainingSampleRequest>? OnSample { get; init; }
        /// <summary>
        /// Scores sample quality every eval_every steps (written to eval.jsonl and reported); null: the config's built-in
        /// dataset's classifier and test split (<see cref="TrainingEvaluation.ForDataset"/>), made when the run starts.
        /// </summary>
        public TrainingEvaluation? Evaluation { get; init; }
        /// <summary>
        /// On resume, when the latest checkpoint fails its checks (checksum, metadata, non-finite values),
        /// continue from the newest one that passes; the failing newer ones are renamed NAME.corrupt.
        /// Without it such a resume stops, naming the previous valid checkpoint.
        /// </summary>
        public bool ResumeFromValid { get; init; }
        /// <summary>Bounds on the dataset files read (image pixels, array elements, classes).</summary>
        public InputLimits Limits { get; init; } = InputLimits.Default;
        /// <summary>Threads, GEMM backend and device of the run; null: <see cref="ComputeContext.Default"/>.</summary>
        public ComputeContext? Compute { get; init; }
        /// <summary>
        /// Where steps are computed; null: the backend of the compute context's device (the CPU backend). In a
        /// data-parallel run the backend must exchange the parts' gradients over <see cref="Communicator"/> itself.
        /// </summary>
        public Func<Transport, ITrainingBackend>? Backend { get; init; }
        /// <summary>
        /// The ranks of a data-parallel run (every rank calls <see cref="Run"/> with the same arguments); null:
        /// this process alone. Rank 0 holds the run folder and writes it; every rank takes its parts of each batch.
        /// </summary>
        public ICommunicator? Communicator { get; init; }
    }

    /// <summary>A loss this many times its running mean is reported as a possible divergence.</summary>
    public const double DivergenceFactor = 100;

    /// <summary>What a run ended with.</summary>
    /// <param name="Step">The step reached.</param>
    /// <param name="LastLoss">The last step's loss; NaN when no step ran.</param>
    /// <param name="RunDir">The run folder.</param>
    /// <param name="ExportedWeights">The EMA weight files written at the end.</param>
    public sealed record Result(long Step, double LastLoss, string RunDir, IReadOnlyList<string> ExportedWeights);

    /// <summary>Fills in the network config from the model name and the data's shape and classes.</summary>
    public static TrainConfig Resolve(TrainConfig config, SampleShape shape, int numClasses)
    {
        ModelConfig model;
        if (config.Model.Equals("custom", StringComparison.OrdinalIgnoreCase))
        {
            model = config.ModelConfig ?? TrainConfig.DefaultCustomModel;
        }
        else
        {
            model = ModelRegistry.Get(config.Model, imageSize: 256, mediators: 0);
            if (config.ModelConfig is { } given) model = given;
        }
        if (shape.Height != shape.Width)
            throw new MediatorDiTException($"the data's samples are {shape.Height}x{shape.Width}; the network needs square inputs.");
        model = AttentionKinds.WithMediators(model with
        {
            InputSize = shape.Height, InChannels = shape.Channels, NumClasses = numClasses, ClassDropoutProb = config.ClassDropout,
        }, config.Mediators.Length == 0 ? null : config.Mediators[0]);
        // Errors name where the network came from: the config's model_config, or a registry name.
        string source = config.ModelConfig is not null ? "the training config's model_config" : $"model '{config.Model}'";
        foreach (int m in config.Mediators) _ = (model with { MediatorNum = m }).Validate(source);
        return config with { ModelConfig = model.Validate(source), GradShards = config.EffectiveGradShards() };
    }

    /// <summary>
    /// Trains a new run in <paramref name="runDir"/> (which must be empty), or resumes the run there. The
    /// folder is locked for the whole call (<see cref="RunFolderLock"/>).
    /// </summary>
    public Result Run(TrainConfig requested, string runDir, bool resume, Options options, CancellationToken token)
    {
        requested.Validate();
        // A device without a backend of its own is refused before the run folder is touched.
        if (options.Backend is null) Devices.DeviceAvailability.Require((options.Compute ?? ComputeContext.Current).DeviceSelection, "training");
        var comm = options.Communicator ?? SingleProcessCommunicator.Instance;
        RunFolderLock? folderLock = null;
        Exception? failure = null;
        if (comm.Rank == 0)
        {
            try
            {
                OutputFolder.EnsureWritable(runDir, "run folder");
                folderLock = RunFolderLock.Acquire(runDir);
                foreach (var removed in folderLock.RemoveStaleTempFiles())
                    options.Messages?.Report($"removed {removed}, left by an interrupted write");
                if (!resume) RequireEmpty(runDir);
            }
            catch (Exception e)
            {
                failure = e;
            }
        }
        try
        {
            comm.Agree(failure, "preparing the run folder");
            return Train(requested, runDir, resume, options, comm, token);
        }
        finally
        {
            folderLock?.Dispose();
        }
    }

    /// <summary>Stops every rank with <paramref name="message"/>, which all of them reached alike: rank 0 states it, the others stay quiet.</summary>
    private static MediatorDiTException StopAll(ICommunicator comm, string message) =>
        comm.Size == 1 ? new MediatorDiTException(message) : new RunStoppedException(message, quiet: comm.Rank != 0);

    /// <summary>
    /// The 32-bit checksum of everything the ranks must agree on: weights, EMA, AdamW moments and steps, the
    /// step and the generator state.
    /// </summary>
    internal static uint StateChecksum(TrainableNetwork network, TrainableNetwork ema, AdamW optimizer, long step, RandomSource rng)
    {
        uint crc = 0;
        static ReadOnlySpan<byte> Bytes(Tensor t) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.Span);
        foreach (var p in network.Parameters) crc = Crc32.Append(crc, Bytes(p.Value));
        foreach (var p in ema.Parameters) crc = Crc32.Append(crc, Bytes(p.Value));
        foreach (var (_, m, v, s) in optimizer.State)
        {
            crc = Crc32.Append(crc, Bytes(m));
            crc = Crc32.Append(crc, Bytes(v));
            crc = Crc32.Append(crc, BitConverter.GetBytes(s));
        }
        crc = Crc32.Append(crc, BitConverter.GetBytes(step));
        foreach (ulong word in rng.GetState()) crc = Crc32.Append(crc, BitConverter.GetBytes(word));
        return crc;
    }

    /// <summary>Rank 0's weights, EMA, AdamW state, step and generator state on every rank.</summary>
    private static long BroadcastState(ICommunicator comm, TrainableNetwork network, TrainableNetwork ema, AdamW optimizer, long step, RandomSource rng)
    {
        if (comm.Size == 1) return step;
        comm.BroadcastTensors(network.Parameters.Select(p => p.Value));
        comm.BroadcastTensors(ema.Parameters.Select(p => p.Value));
        var state = optimizer.State;
        comm.BroadcastTensors(state.SelectMany(s => new[] { s.ExpAvg, s.ExpAvgSq }));
        var words = new long[state.Count + 1];
        for (int i = 0; i < state.Count; i++) words[i] = state[i].Step;
        words[^1] = step;
        comm.Broadcast<long>(words, 0);
        for (int i = 0; i < state.Count; i++) optimizer.RestoreStep(state[i].Param, words[i]);
        var rngState = rng.GetState();
        comm.Broadcast<ulong>(rngState, 0);
        rng.SetState(rngState);
        return words[^1];
    }

    private static void RequireEmpty(string runDir)
    {
        var entries = Directory.EnumerateFileSystemEntries(runDir)
            .Select(Path.GetFileName)
            .Where(name => name != RunFolderLock.FileName)
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (entries.Length > 0)
            throw new MediatorDiTException(
                $"the run folder '{runDir}' is not empty (it holds {string.Join(", ", entries.Take(3))}{(entries.Length > 3 ? ", ..." : "")}); " +
                $"continue that run with --resume {runDir}, or give a new folder.");
    }

    private Result Train(TrainConfig requested, string runDir, bool resume, Options options, ICommunicator comm, CancellationToken token)
    {
        bool root = comm.Rank == 0;
        var messages = root ? options.Messages : null;
        string configPath = Path.Combine(runDir, "config.json");
        string? checkpoint = null;
        Exception? failure = null;
        if (root)
        {
            try
            {
                if (!resume && requested.InitFrom is { } initFrom && !File.Exists(initFrom))
                    throw new MediatorDiTException($"init_from file '{initFrom}' does not exist.");
                if (resume)
                {
                    if (!File.Exists(configPath)) throw new MediatorDiTException($"cannot resume: '{configPath}' does not exist.");
                    var saved = TrainConfig.FromJson(File.ReadAllText(configPath), configPath);
                    // Runs from before grad_shards computed one part per micro-batch.
                    int savedShards = saved.GradShards > 0 ? saved.GradShards : saved.GradAccum;
                    saved = saved with { GradShards = savedShards };
                    if (requested.GradShards == 0) requested = requested with { GradShards = savedShards };
                    var differing = TrainConfig.DifferingInvariants(saved, requested with { ModelConfig = saved.ModelConfig ?? requested.ModelConfig });
                    if (differing.Count > 0)
                        throw new MediatorDiTException(
                            $"cannot resume {runDir}: the new config differs from the run's in {string.Join(", ", differing)}; these fields must stay the same.");
                    checkpoint = ValidLatest(runDir, options);
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        }
        comm.Agree(failure, "reading the run's config");
        // Every rank trains rank 0's config (the others may not see the run folder).
        if (comm.Size > 1) requested = TrainConfig.FromJson(comm.BroadcastString(root ? requested.ToJson() : null), "rank 0's config");

        IDataset? dataset = null;
        TrainConfig? resolved = null;
        try
        {
            dataset = TrainingData.Open(requested, messages, token, options.Limits);
            resolved = Resolve(requested, dataset.SampleShape, dataset.NumClasses);
            resolved.ModelConfig!.Validate();
            if (dataset.SampleShape.Height % resolved.ModelConfig!.PatchSize != 0)
                throw new MediatorDiTException($"image size {dataset.SampleShape.Height} is not divisible by patch_size {resolved.ModelConfig.PatchSize}.");
        }
        catch (Exception e) when (comm.Size > 1)
        {
            failure = e;
        }
        comm.Agree(failure, "opening the data");
        var config = resolved!;
        var modelConfig = config.ModelConfig!;
        int shards = config.GradShards;
        if (shards % comm.Size != 0)
            throw StopAll(comm, $"grad_shards {shards} cannot be shared by {comm.Size} ranks; use a number of ranks that divides {shards} " +
                $"(or start a new run with grad_shards a multiple of {comm.Size}; it cannot change on resume).");
        if (comm.Size > 1)
            messages?.Report($"{comm.Size} ranks over {comm.Name}: each computes {shards / comm.Size} of the batch's {shards} parts ({config.BatchSize / comm.Size} samples)");

        var network = TrainableNetwork.Create(modelConfig, config.Mediators);
        var ema = TrainableNetwork.Create(modelConfig, config.Mediators);
        foreach (var member in network.Members) ModelInitializer.Initialize(member, config.Seed);
        var optimizer = new AdamW(network.Parameters, config.LearningRate, weightDecay: config.WeightDecay);
        var rng = new RandomSource(config.Seed ^ 0x5DEECE66DUL);
        long step = 0;
        if (root)
        {
            try
            {
                if (checkpoint is null && config.InitFrom is { } source) InitialWeights.LoadInto(source, network, messages);
                Ema.CopyWeights(network, ema);
                if (checkpoint is not null)
                {
                    (step, var rngState, _) = TrainingCheckpoint.Load(checkpoint, network, ema, optimizer);
                    rng.SetState(rngState);
                    messages?.Report($"resumed from {checkpoint} at step {step}{(comm.Size > 1 ? $" on {comm.Size} ranks" : "")}");
                }
                AtomicFile.Write(configPath, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(config.ToJson())));
            }
            catch (Exception e)
            {
                failure = e;
            }
        }
        comm.Agree(failure, "loading the weights");
        step = BroadcastState(comm, network, ema, optimizer, step, rng);

        var transport = new Transport(ParsePath(config.Path), ParsePrediction(config.Prediction), ParseWeighting(config.LossWeight),
            config.TrainEps, config.SampleEps);
        using var compute = (options.Compute ?? ComputeContext.Current).Use();
        using var backend = options.Backend?.Invoke(transport) ?? new CpuTrainingBackend(transport, comm);
        backend.Attach(network, ema, optimizer);
        var loader = new DataLoader(dataset!, new DataLoaderOptions
        {
            BatchSize = config.BatchSize, Seed = config.Seed, Shuffle = true, DropLast = true, HorizontalFlip = config.HorizontalFlip,
        });
        // This rank's parts of every batch: samples [first * part, (first + mine) * part).
        int mine = shards / comm.Size, firstShard = comm.Rank * mine, partSize = config.BatchSize / shards;
        var metrics = root ? new MetricsLog(runDir, step, messages) : null;
        var evaluation = root && config.EvalEvery > 0 ? options.Evaluation ?? TrainingEvaluation.ForDataset(config, messages, token) : null;
        var evaluationLog = evaluation is null ? null : new TrainingEvaluationLog(runDir, step, messages);
        var clock = Stopwatch.StartNew();
        long lastSavedStep = step;
        // The logged rate covers the last log interval (as the authors' train.py), so a pause or a busy stretch
        // shows in it and then leaves it; the time since start would keep it for the rest of the run.
        (long Step, double Seconds) lastLog = (step, 0);
        // The newest checkpoint written while the loss was not diverging: named when the run stops, never pruned.
        string? lastGood = checkpoint;
        long? lastGoodStep = checkpoint is null ? null : step;
        var divergence = new DivergenceWatch();
        double lastLoss = double.NaN;
        (long Steps, double Seconds, double Bytes) exchange = default;
        var images = new Tensor(config.BatchSize, dataset!.SampleShape.Channels, dataset.SampleShape.Height, dataset.SampleShape.Width);
        var labels = new int[config.BatchSize];

        string LastGoodText() => lastGood is null
            ? "no checkpoint was written yet"
            : divergence.Diverging && lastSavedStep != lastGoodStep
                ? $"the last good checkpoint is {lastGood}, step {lastGoodStep}, written before the loss began to diverge"
                : $"the last good checkpoint is {lastGood}, step {lastGoodStep}";

        void SaveCheckpoint()
        {
            backend.SyncToHost();
            if (TrainingCheckpoint.FindNonFinite(network, ema, optimizer) is { } bad)
                throw StopAll(comm,
                    $"tensor '{bad}' holds a NaN or infinity at step {step}; stopped without checkpointing it ({LastGoodText()}); try a lower lr or grad_clip.");
            if (comm.Size > 1)
            {
                var sums = comm.GatherValue(StateChecksum(network, ema, optimizer, step, rng));
                if (sums.Distinct().Count() > 1)
                    throw StopAll(comm, $"the ranks' weights disagree at step {step} (state checksums {string.Join(", ", sums.Select((c, r) => $"rank {r} {c:x8}"))}); " +
                        $"all ranks stopped without checkpointing it ({LastGoodText()}).");
            }
            string path = TrainingCheckpoint.PathFor(runDir, step);
            Exception? failure = null;
            if (root)
            {
                try
                {
                    TrainingCheckpoint.Save(path, network, ema, optimizer, step, config, rng.GetState());
                    if (!divergence.Diverging) TrainingCheckpoint.Prune(runDir, config.KeepLast, protect: step);
                    else TrainingCheckpoint.Prune(runDir, config.KeepLast, protect: lastGoodStep);
                }
                catch (Exception e)
                {
                    failure = e;
                }
            }
            comm.Agree(failure, $"writing the checkpoint of step {step}");
            lastSavedStep = step;
            if (!divergence.Diverging) (lastGood, lastGoodStep) = (path, step);
        }

        try
        {
            while (step < config.Steps)
            {
                // All ranks stop at the same step, whichever of them got the signal.
                if (comm.Size == 1) token.ThrowIfCancellationRequested();
                else if (comm.Any(token.IsCancellationRequested)) throw new OperationCanceledException(token);
                loader.GetBatch(step, images, labels, firstShard * partSize, mine * partSize);
                // The draws cover the whole global batch on every rank (so they do not depend on the number of
                // ranks); each rank then keeps its own parts.
                var batch = Draw(network, transport, rng, images, labels, config, step).Part(firstShard, mine);
                var (loss, gradNorm) = backend.Step(batch);
                if (backend is CpuTrainingBackend { LastExchangeBytes: > 0 } cpu)
                    exchange = (exchange.Steps + 1, exchange.Seconds + cpu.LastExchangeTime.TotalSeconds, exchange.Bytes + cpu.LastExchangeBytes);
                double lr = batch.LearningRate;
                if (!double.IsFinite(loss) || !double.IsFinite(gradNorm))
                {
                    // The optimizer has taken a non-finite gradient into its moments: nothing from this step on is kept.
                    metrics?.Append(new MetricsLog.Entry(step + 1, loss, gradNorm, lr, double.NaN));
                    metrics?.WriteSvg();
                    string what = !double.IsFinite(loss) ? $"the training loss became {Format(loss)}" : $"the gradient norm became {Format(gradNorm)} (loss {Format(loss)})";
                    throw StopAll(comm,
                        $"{what} at step {step + 1}; stopped without checkpointing it ({LastGoodText()}); try a lower lr or grad_clip.");
                }
                step++;
                lastLoss = loss;
                if (divergence.Observe(loss) is { } mean)
                    messages?.Report(
                        $"warning: at step {step} the loss {Format(loss)} is {Format(loss / mean)} times its running mean {Format(mean)}; the run may be diverging (try a lower lr or grad_clip).");
                if (step % config.LogEvery == 0 || step == config.Steps)
                {
                    double seconds = clock.Elapsed.TotalSeconds;
                    double ips = (step - lastLog.Step) * config.BatchSize / Math.Max(seconds - lastLog.Seconds, 1e-9);
                    lastLog = (step, seconds);
                    metrics?.Append(new MetricsLog.Entry(step, loss, gradNorm, lr, ips));
                    var remaining = TimeSpan.FromSeconds((config.Steps - step) * config.BatchSize / Math.Max(ips, 1e-9));
                    if (root) options.Progress?.Report(new TrainingProgress(step, config.Steps, loss, gradNorm, lr, ips, clock.Elapsed, remaining));
                }
                if (step % config.CheckpointEvery == 0 || step == config.Steps)
                {
                    SaveCheckpoint();
                    metrics?.WriteSvg();
                }
                if (root && config.SampleEvery > 0 && step % config.SampleEvery == 0 && options.OnSample is { } sample)
                {
                    backend.SyncToHost();
                    sample(new TrainingSampleRequest(ema, step, Path.Combine(runDir, "samples", $"step-{step:D7}.png"), config.SampleSteps));
                }
                if (evaluation is not null && step % config.EvalEvery == 0)
                {
                    backend.SyncToHost();
                    foreach (var entry in evaluation.Evaluate(ema, network, step, token))
                    {
                        evaluationLog!.Append(entry);
                        messages?.Report(TrainingEvaluation.Describe(entry));
                    }
                    evaluationLog!.WriteSvg();
                }
            }
        }
        catch (OperationCanceledException)
        {
            if (step > lastSavedStep) SaveCheckpoint();
            metrics?.WriteSvg();
            messages?.Report($"cancelled: checkpoint at step {step} saved in {Path.Combine(runDir, "checkpoints")}");
            throw;
        }
        metrics?.WriteSvg();
        if (divergence.Diverging && lastGood is not null && lastGoodStep != lastSavedStep)
            messages?.Report(
                $"warning: the run ended with the loss still diverging ({Format(lastLoss)}); {lastGood}, step {lastGoodStep}, written before it began, was kept.");
        if (exchange.Steps > 0)
            messages?.Report(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"gradient exchange between the {comm.Size} ranks: {1000 * exchange.Seconds / exchange.Steps:F1} ms and {exchange.Bytes / exchange.Steps / 1e6:F2} MB received per step on rank 0 (mean of {exchange.Steps} steps)"));
        backend.SyncToHost();
        var exported = root ? ExportEma(ema, runDir) : [];
        return new Result(step, lastLoss, runDir, exported);
    }

    private static string Format(double v) => v.ToString("G3", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// The checkpoint to resume from: the latest, when it passes its checks; else, with
    /// <see cref="Options.ResumeFromValid"/>, the newest that does (newer ones renamed NAME.corrupt).
    /// </summary>
    private static string ValidLatest(string runDir, Options options)
    {
        var all = TrainingCheckpoint.List(runDir);
        if (all.Count == 0) throw new MediatorDiTException($"cannot resume: {runDir} has no checkpoint yet.");
        var (latestStep, latest) = all[^1];
        if (TrainingCheckpoint.Check(latest) is not { } problem) return latest;
        var previous = TrainingCheckpoint.PreviousValid(runDir, latestStep);
        if (!options.ResumeFromValid)
            throw new MediatorDiTException(previous is { } p
                ? $"cannot resume from the latest checkpoint: {problem.TrimEnd('.')}; the previous valid checkpoint is {p.Path} (step {p.Step}), add --resume-from-valid to continue from it."
                : $"cannot resume from the latest checkpoint: {problem.TrimEnd('.')}; no earlier checkpoint of {runDir} is valid either.");
        if (previous is not { } valid)
            throw new MediatorDiTException($"cannot resume: {problem.TrimEnd('.')}; no earlier checkpoint of {runDir} is valid either.");
        foreach (var (step, path) in all.Where(c => c.Step > valid.Step))
        {
            File.Move(path, path + ".corrupt", overwrite: true);
            options.Messages?.Report($"warning: {path} fails its checks; renamed to {Path.GetFileName(path)}.corrupt");
        }
        return valid.Path;
    }

    /// <summary>
    /// Flags a loss <see cref="DivergenceFactor"/> times its running mean (an exponential mean of the losses
    /// seen while not diverging, so an explosion does not raise its own baseline). Reports once on entering;
    /// the state ends when the loss is back within ten times the mean.
    /// </summary>
    private sealed class DivergenceWatch
    {
        private double _mean = double.NaN;
        public bool Diverging { get; private set; }

        /// <summary>The running mean when this loss starts a divergence, else null.</summary>
        public double? Observe(double loss)
        {
            if (double.IsNaN(_mean))
            {
                _mean = loss;
                return null;
            }
            if (Diverging)
            {
                if (loss <= 10 * _mean) Diverging = false;
                return null;
            }
            if (loss > DivergenceFactor * _mean && _mean > 0)
            {
                Diverging = true;
                return _mean;
            }
            _mean = 0.9 * _mean + 0.1 * loss;
            return null;
        }
    }

    /// <summary>
    /// The host's draws for one step (the ladder member, label dropout, the transport's t and x0, in this order
    /// from <paramref name="rng"/>) and the step's learning rate after warm-up.
    /// </summary>
    internal static TrainingBatch Draw(TrainableNetwork network, Transport transport, RandomSource rng, Tensor x1, int[] labels,
        TrainConfig config, long step)
    {
        int member = network.Members.Count > 1 ? rng.NextInt(network.Members.Count) : 0;
        var y = network.Members[member].YEmbedder.DropLabels(labels, rng);
        var (t, x0, _) = transport.Sample(x1, rng);
        var (xt, _) = transport.PathSample(t, x0, x1);
        double lr = config.WarmupSteps > 0 ? config.LearningRate * Math.Min(1.0, (step + 1.0) / config.WarmupSteps) : config.LearningRate;
        return new TrainingBatch(member, y, xt, t, x0, x1, config.EffectiveGradShards(), config.GradClip, lr, config.EmaDecay);
    }

    /// <summary>One optimisation step over the whole batch (its grad_shards parts one after another) on the CPU backend.</summary>
    internal static (double Loss, double GradNorm, double Lr) TrainStep(TrainableNetwork network, TrainableNetwork ema, AdamW optimizer,
        Transport transport, RandomSource rng, Tensor x1, int[] labels, TrainConfig config, long step)
    {
        TrainingBatch batch;
        using (OpProfiler.Time("draw")) batch = Draw(network, transport, rng, x1, labels, config, step);
        using var backend = new CpuTrainingBackend(transport);
        backend.Attach(network, ema, optimizer);
        var result = backend.Step(batch);
        return (result.Loss, result.GradNorm, batch.LearningRate);
    }

    /// <summary>
    /// Writes the EMA weights as plain state dicts with the official key names and the config in the
    /// metadata: ema.safetensors, or ema-m{n}.safetensors per member of a shared ladder.
    /// </summary>
    public static IReadOnlyList<string> ExportEma(TrainableNetwork ema, string runDir) => ExportWeights(ema, runDir, "ema");

    /// <summary>{stem}.safetensors, or {stem}-m{n}.safetensors per member of a shared ladder, in <paramref name="dir"/>.</summary>
    public static IReadOnlyList<string> ExportWeights(TrainableNetwork network, string dir, string stem)
    {
        var written = new List<string>();
        for (int i = 0; i < network.Members.Count; i++)
        {
            string name = network.Members.Count == 1 ? $"{stem}.safetensors" : $"{stem}-m{network.MediatorCounts[i]}.safetensors";
            string path = Path.Combine(dir, name);
            ModelFiles.Save(network.Members[i], path);
            written.Add(path);
        }
        return written;
    }

    private static PathType ParsePath(string s) => Enum.TryParse<PathType>(s, true, out var v) ? v
        : throw new MediatorDiTException($"path must be Linear, GVP or VP, got '{s}'.");

    private static PredictionType ParsePrediction(string s) => Enum.TryParse<PredictionType>(s, true, out var v) ? v
        : throw new MediatorDiTException($"prediction must be velocity, score or noise, got '{s}'.");

    private static LossWeighting ParseWeighting(string s) => Enum.TryParse<LossWeighting>(s, true, out var v) ? v
        : throw new MediatorDiTException($"loss_weight must be none, velocity or likelihood, got '{s}'.");
}
