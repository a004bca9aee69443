using System.Diagnostics;
using MediatorDiT.Data;
using MediatorDiT.Diffusion;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Training;

/// <summary>
/// SiT training: x1 from the data, (t, x0) from the transport, the network predicts at x_t, the transport's
/// loss, backward, optional clipping, AdamW with warm-up, EMA. Every random draw comes from one generator
/// whose state is checkpointed and the data order is a function of (seed, step), so a resumed run
/// continues bit for bit. Checkpoints every N steps, at the end and on cancellation.
/// </summary>
public sealed class Trainer
{
    public sealed record Options
    {
        public IProgress<TrainingProgress>? Progress { get; init; }
        public IProgress<string>? Messages { get; init; }
        /// <summary>Called every sample_every steps with the EMA network (e.g. to write a sample grid).</summary>
        public Action<TrainableNetwork, long, string>? OnSample { get; init; }
        /// <summary>Bounds on the dataset files read (image pixels, array elements, classes).</summary>
        public InputLimits Limits { get; init; } = InputLimits.Default;
    }

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
        model = model with
        {
            InputSize = shape.Height, InChannels = shape.Channels, NumClasses = numClasses, ClassDropoutProb = config.ClassDropout,
            Attention = config.Mediators.Length == 0 ? AttentionKind.Full : AttentionKind.Mediator,
            MediatorNum = config.Mediators.Length == 0 ? model.MediatorNum : config.Mediators[0],
        };
        foreach (int m in config.Mediators) _ = (model with { MediatorNum = m }).Validate();
        return config with { ModelConfig = model.Validate() };
    }

    /// <summary>Trains a new run in <paramref name="runDir"/>, or resumes the run there.</summary>
    public Result Run(TrainConfig requested, string runDir, bool resume, Options options, CancellationToken token)
    {
        requested.Validate();
        OutputFolder.EnsureWritable(runDir, "run folder");
        if (!resume && requested.InitFrom is { } initFrom && !File.Exists(initFrom))
            throw new MediatorDiTException($"init_from file '{initFrom}' does not exist.");
        string configPath = Path.Combine(runDir, "config.json");
        string? checkpoint = null;
        if (resume)
        {
            if (!File.Exists(configPath)) throw new MediatorDiTException($"cannot resume: '{configPath}' does not exist.");
            var saved = TrainConfig.FromJson(File.ReadAllText(configPath), configPath);
            var differing = TrainConfig.DifferingInvariants(saved, requested with { ModelConfig = saved.ModelConfig ?? requested.ModelConfig });
            if (differing.Count > 0)
                throw new MediatorDiTException(
                    $"cannot resume {runDir}: the new config differs from the run's in {string.Join(", ", differing)}; these fields must stay the same.");
            checkpoint = TrainingCheckpoint.Latest(runDir) ?? throw new MediatorDiTException($"cannot resume: {runDir} has no checkpoint yet.");
        }

        var dataset = TrainingData.Open(requested, options.Messages, token, options.Limits);
        var config = Resolve(requested, dataset.SampleShape, dataset.NumClasses);
        var modelConfig = config.ModelConfig!;
        modelConfig.Validate();
        if (dataset.SampleShape.Height % modelConfig.PatchSize != 0)
            throw new MediatorDiTException($"image size {dataset.SampleShape.Height} is not divisible by patch_size {modelConfig.PatchSize}.");

        var network = TrainableNetwork.Create(modelConfig, config.Mediators);
        var ema = TrainableNetwork.Create(modelConfig, config.Mediators);
        foreach (var member in network.Members) ModelInitializer.Initialize(member, config.Seed);
        if (checkpoint is null && config.InitFrom is { } source) InitialWeights.LoadInto(source, network, options.Messages);
        Ema.CopyWeights(network, ema);
        var optimizer = new AdamW(network.Parameters, config.LearningRate, weightDecay: config.WeightDecay);
        var rng = new RandomSource(config.Seed ^ 0x5DEECE66DUL);
        long step = 0;
        if (checkpoint is not null)
        {
            (step, var rngState, _) = TrainingCheckpoint.Load(checkpoint, network, ema, optimizer);
            rng.SetState(rngState);
            options.Messages?.Report($"resumed from {checkpoint} at step {step}");
        }
        AtomicFile.Write(configPath, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(config.ToJson())));

        var transport = new Transport(ParsePath(config.Path), ParsePrediction(config.Prediction), ParseWeighting(config.LossWeight),
            config.TrainEps, config.SampleEps);
        var loader = new DataLoader(dataset, new DataLoaderOptions
        {
            BatchSize = config.BatchSize, Seed = config.Seed, Shuffle = true, DropLast = true, HorizontalFlip = config.HorizontalFlip,
        });
        var metrics = new MetricsLog(runDir, step);
        var clock = Stopwatch.StartNew();
        long startStep = step, lastGoodStep = step;
        double lastLoss = double.NaN;
        var images = new Tensor(config.BatchSize, dataset.SampleShape.Channels, dataset.SampleShape.Height, dataset.SampleShape.Width);
        var labels = new int[config.BatchSize];

        void SaveCheckpoint()
        {
            TrainingCheckpoint.Save(TrainingCheckpoint.PathFor(runDir, step), network, ema, optimizer, step, config, rng.GetState());
            TrainingCheckpoint.Prune(runDir, config.KeepLast);
            lastGoodStep = step;
        }

        try
        {
            while (step < config.Steps)
            {
                token.ThrowIfCancellationRequested();
                loader.GetBatch(step, images, labels);
                var (loss, gradNorm, lr) = TrainStep(network, ema, optimizer, transport, rng, images, labels, config, step);
                if (!double.IsFinite(loss))
                {
                    string last = lastGoodStep > 0 || checkpoint is not null ? $"the last good checkpoint is step {lastGoodStep} in {Path.Combine(runDir, "checkpoints")}" : "no checkpoint was written yet";
                    throw new MediatorDiTException($"the training loss became {loss} at step {step + 1}; stopped ({last}). Try a lower lr or grad_clip.");
                }
                step++;
                lastLoss = loss;
                if (step % config.LogEvery == 0 || step == config.Steps)
                {
                    double seconds = clock.Elapsed.TotalSeconds;
                    double ips = (step - startStep) * config.BatchSize / Math.Max(seconds, 1e-9);
                    metrics.Append(new MetricsLog.Entry(step, loss, gradNorm, lr, ips));
                    var remaining = TimeSpan.FromSeconds((config.Steps - step) * config.BatchSize / Math.Max(ips, 1e-9));
                    options.Progress?.Report(new TrainingProgress(step, config.Steps, loss, gradNorm, lr, ips, clock.Elapsed, remaining));
                }
                if (step % config.CheckpointEvery == 0 || step == config.Steps)
                {
                    SaveCheckpoint();
                    metrics.WriteSvg();
                }
                if (config.SampleEvery > 0 && step % config.SampleEvery == 0 && options.OnSample is { } sample)
                    sample(ema, step, Path.Combine(runDir, "samples", $"step-{step:D7}.png"));
            }
        }
        catch (OperationCanceledException)
        {
            if (step > lastGoodStep) SaveCheckpoint();
            metrics.WriteSvg();
            options.Messages?.Report($"cancelled: checkpoint at step {step} saved in {Path.Combine(runDir, "checkpoints")}");
            throw;
        }
        metrics.WriteSvg();
        var exported = ExportEma(ema, runDir);
        return new Result(step, lastLoss, runDir, exported);
    }

    /// <summary>One optimisation step over the whole batch (split into grad_accum micro-batches).</summary>
    internal static (double Loss, double GradNorm, double Lr) TrainStep(TrainableNetwork network, TrainableNetwork ema, AdamW optimizer,
        Transport transport, RandomSource rng, Tensor x1, int[] labels, TrainConfig config, long step)
    {
        int member = network.Members.Count > 1 ? rng.NextInt(network.Members.Count) : 0;
        var model = network.Members[member];
        var y = model.YEmbedder.DropLabels(labels, rng);
        var (t, x0, _) = transport.Sample(x1, rng);
        var (xt, _) = transport.PathSample(t, x0, x1);

        network.ZeroGrad();
        int batch = labels.Length, micro = batch / config.GradAccum, per = x1.Length / batch;
        double lossSum = 0;
        for (int m = 0; m < config.GradAccum; m++)
        {
            Tensor Slice(Tensor full) => new(full.Span.Slice(m * micro * per, micro * per).ToArray(), [micro, .. full.Shape[1..]]);
            var xtM = Slice(xt);
            var tM = t.AsSpan(m * micro, micro).ToArray();
            var prediction = model.Forward(xtM, tM, y.AsSpan(m * micro, micro));
            var gradient = new Tensor(prediction.Shape);
            var losses = transport.TrainingLoss(prediction, tM, Slice(x0), Slice(x1), gradient);
            foreach (float l in losses) lossSum += l;
            if (config.GradAccum > 1) TensorPrimitivesScale(gradient, 1f / config.GradAccum);
            model.Backward(gradient);
        }

        var active = model.Parameters.Where(p => p.Trainable).ToArray();
        double norm = Math.Sqrt(active.Sum(p => (double)System.Numerics.Tensors.TensorPrimitives.SumOfSquares(p.Grad!.Span)));
        if (config.GradClip > 0 && norm > config.GradClip)
        {
            float scale = (float)(config.GradClip / (norm + 1e-6));
            foreach (var p in active) TensorPrimitivesScale(p.Grad!, scale);
        }
        double lr = config.WarmupSteps > 0 ? config.LearningRate * Math.Min(1.0, (step + 1.0) / config.WarmupSteps) : config.LearningRate;
        optimizer.LearningRate = lr;
        optimizer.Update(active);
        Ema.Update(ema, network, config.EmaDecay);
        return (lossSum / batch, norm, lr);
    }

    private static void TensorPrimitivesScale(Tensor t, float s) => System.Numerics.Tensors.TensorPrimitives.Multiply(t.Span, s, t.Span);

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
