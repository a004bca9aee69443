using System.Text.Json;
using System.Text.Json.Serialization;
using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Training;

/// <summary>
/// Everything a training run needs. JSON names are snake_case; the fully resolved config is written into
/// the run folder (and into every checkpoint), so a run can be resumed and audited.
/// Precedence: defaults &lt; --config file &lt; command-line options.
/// </summary>
public sealed record TrainConfig
{
    /// <summary>A registered name (SiT-S/2, ...) or "custom" with <see cref="ModelConfig"/> given.</summary>
    [JsonPropertyName("model")] public string Model { get; init; } = "custom";
    /// <summary>The network config; filled from <see cref="Model"/> and the data's shape when resolved.</summary>
    [JsonPropertyName("model_config")] public ModelConfig? ModelConfig { get; init; }
    /// <summary>Mediator counts: none = full attention; one = a mediator model; several = one shared-weight ladder.</summary>
    [JsonPropertyName("mediators")] public int[] Mediators { get; init; } = [16];

    /// <summary>"fashion-mnist", "mnist", "latents:PATH" or "folder:PATH".</summary>
    [JsonPropertyName("dataset")] public string Dataset { get; init; } = "fashion-mnist";
    /// <summary>Where built-in datasets are downloaded and cached; null: <see cref="Data.DatasetCache.DefaultDataDir"/>.</summary>
    [JsonPropertyName("data_dir")] public string? DataDir { get; init; }
    /// <summary>Sample side in pixels: built-in 28x28 images are padded to it, folder images centre-cropped to it; latent datasets keep their own size.</summary>
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 32;
    /// <summary>Mirrors each training sample left-right with probability 1/2.</summary>
    [JsonPropertyName("hflip")] public bool HorizontalFlip { get; init; }

    /// <summary>The transport path: "Linear", "GVP" or "VP" (case-insensitive).</summary>
    [JsonPropertyName("path")] public string Path { get; init; } = "Linear";
    /// <summary>What the network predicts: "velocity", "score" or "noise".</summary>
    [JsonPropertyName("prediction")] public string Prediction { get; init; } = "velocity";
    /// <summary>The loss weighting: "none", "velocity" or "likelihood".</summary>
    [JsonPropertyName("loss_weight")] public string LossWeight { get; init; } = "none";
    /// <summary>Distance of the training times from the path's singular ends; null: the transport's default.</summary>
    [JsonPropertyName("train_eps")] public double? TrainEps { get; init; }
    /// <summary>Distance of the sampling times from the path's singular ends; null: the transport's default.</summary>
    [JsonPropertyName("sample_eps")] public double? SampleEps { get; init; }

    /// <summary>Samples per optimisation step (all micro-batches together).</summary>
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; } = 64;
    /// <summary>
    /// Bounds the size of a forward and backward to batch_size / grad_accum: <see cref="GradShards"/> is a multiple
    /// of it (the batch's parts are the micro-batches); must divide <see cref="BatchSize"/>.
    /// </summary>
    [JsonPropertyName("grad_accum")] public int GradAccum { get; init; } = 1;
    /// <summary>
    /// Equal parts of every batch whose gradients are computed separately (one forward and backward each) and
    /// summed in part order, so the step does not depend on how many ranks share the batch: a data-parallel run
    /// on N ranks (N dividing it) gives each rank grad_shards / N parts. 0: chosen when the run starts (the
    /// largest divisor of batch_size that is a multiple of grad_accum and at most max(8, grad_accum)) and recorded
    /// in config.json. A multiple of grad_accum, so no part is larger than a micro-batch.
    /// </summary>
    [JsonPropertyName("grad_shards")] public int GradShards { get; init; }
    /// <summary>AdamW's learning rate after warm-up.</summary>
    [JsonPropertyName("lr")] public double LearningRate { get; init; } = 1e-4;
    /// <summary>Steps over which the learning rate rises linearly to <see cref="LearningRate"/>; 0: none.</summary>
    [JsonPropertyName("warmup_steps")] public int WarmupSteps { get; init; }
    /// <summary>AdamW's decoupled weight decay (p *= 1 - lr * wd).</summary>
    [JsonPropertyName("weight_decay")] public double WeightDecay { get; init; }
    /// <summary>Largest global gradient norm; larger gradients are scaled down to it. 0: no clipping.</summary>
    [JsonPropertyName("grad_clip")] public double GradClip { get; init; }
    /// <summary>Decay of the EMA weights, in [0, 1).</summary>
    [JsonPropertyName("ema_decay")] public double EmaDecay { get; init; } = 0.9999;
    /// <summary>Probability that a label is replaced by the null label (for classifier-free guidance), in [0, 1).</summary>
    [JsonPropertyName("class_dropout")] public double ClassDropout { get; init; } = 0.1;
    /// <summary>Seeds the initial weights, the data order and every per-step draw.</summary>
    [JsonPropertyName("seed")] public ulong Seed { get; init; }
    /// <summary>Optimisation steps of the whole run (a resume continues up to it).</summary>
    [JsonPropertyName("steps")] public long Steps { get; init; } = 1000;

    /// <summary>
    /// Weights to start a new run from (a run checkpoint, an ema*.safetensors or an official .pt), resized to
    /// this run's token grid; the optimizer starts fresh. Ignored when resuming.
    /// </summary>
    [JsonPropertyName("init_from")] public string? InitFrom { get; init; }

    /// <summary>Steps between checkpoints; one is also written at the end and on cancellation.</summary>
    [JsonPropertyName("ckpt_every")] public long CheckpointEvery { get; init; } = 500;
    /// <summary>Checkpoints kept; older ones are deleted, except the newest written while the loss was not diverging.</summary>
    [JsonPropertyName("keep_last")] public int KeepLast { get; init; } = 3;
    /// <summary>Steps between metrics.jsonl lines and progress reports.</summary>
    [JsonPropertyName("log_every")] public long LogEvery { get; init; } = 10;
    /// <summary>Steps between calls of <see cref="Trainer.Options.OnSample"/> with the EMA network; 0: never.</summary>
    [JsonPropertyName("sample_every")] public long SampleEvery { get; init; }
    /// <summary>Sampling steps of the periodic samples (passed to <see cref="Trainer.Options.OnSample"/>; the CLI's grid integrates the ODE with that many Euler steps).</summary>
    [JsonPropertyName("sample_steps")] public int SampleSteps { get; init; } = 50;
    /// <summary>
    /// Steps between scores of sample quality (<see cref="TrainingEvaluation"/>: the EMA and the raw weights, written to
    /// eval.jsonl); 0: never. Needs a built-in dataset, whose shipped classifier scores the samples.
    /// </summary>
    [JsonPropertyName("eval_every")] public long EvalEvery { get; init; }
    /// <summary>Images per score of <see cref="EvalEvery"/>.</summary>
    [JsonPropertyName("eval_samples")] public int EvalSamples { get; init; } = 200;
    /// <summary>SDE time points of each image of <see cref="EvalEvery"/>.</summary>
    [JsonPropertyName("eval_steps")] public int EvalSteps { get; init; } = 50;

    /// <summary>
    /// The network of model "custom" when no model_config is given: a small SiT for 32x32 images
    /// (patch 2: 256 tokens; hidden 192, 6 blocks, 3 heads), trainable on a CPU.
    /// </summary>
    public static ModelConfig DefaultCustomModel { get; } = new() { HiddenSize = 192, Depth = 6, NumHeads = 3, PatchSize = 2, LearnSigma = false };

    /// <summary>Fields that fix the network, the data and the optimisation; a resume must keep them.</summary>
    public static readonly string[] ResumeInvariantFields =
        ["model", "model_config", "mediators", "dataset", "image_size", "path", "prediction", "loss_weight", "batch_size", "grad_accum", "grad_shards", "seed"];

    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    /// <summary>The config as indented JSON with snake_case names, as config.json and checkpoints store it.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Options);

    /// <summary>Reads a config written by <see cref="ToJson"/> or by hand; missing fields keep their defaults.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="source">Where the text came from (a file path), for messages.</param>
    /// <exception cref="MediatorDiTException">The text is empty, not valid JSON, or holds a value of the wrong kind (<see cref="ConfigJson"/>).</exception>
    public static TrainConfig FromJson(string json, string source)
    {
        return ConfigJson.Read<TrainConfig>(json, source, "training config", Options);
    }

    /// <summary>Throws naming the first option with an impossible value.</summary>
    public TrainConfig Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok) throw new MediatorDiTException(message);
        }
        Require(BatchSize > 0, $"batch_size must be positive, got {BatchSize}.");
        Require(GradAccum > 0 && BatchSize % GradAccum == 0, $"grad_accum {GradAccum} must be positive and divide batch_size {BatchSize}.");
        Require(GradShards >= 0, $"grad_shards must be 0 (chosen at the start) or positive, got {GradShards}.");
        Require(GradShards == 0 || (BatchSize % GradShards == 0 && GradShards % GradAccum == 0),
            $"grad_shards {GradShards} must divide batch_size {BatchSize} and be a multiple of grad_accum {GradAccum}.");
        Require(LearningRate > 0, $"lr must be positive, got {LearningRate}.");
        Require(Steps > 0, $"steps must be positive, got {Steps}.");
        Require(EmaDecay >= 0 && EmaDecay < 1, $"ema_decay must be in [0, 1), got {EmaDecay}.");
        Require(ClassDropout >= 0 && ClassDropout < 1, $"class_dropout must be in [0, 1), got {ClassDropout}.");
        Require(CheckpointEvery > 0, $"ckpt_every must be positive, got {CheckpointEvery}.");
        Require(KeepLast > 0, $"keep_last must be positive, got {KeepLast}.");
        Require(LogEvery > 0, $"log_every must be positive, got {LogEvery}.");
        Require(SampleEvery >= 0, $"sample_every must be 0 (off) or positive, got {SampleEvery}.");
        Require(SampleSteps > 0, $"sample_steps must be positive, got {SampleSteps}.");
        Require(EvalEvery >= 0, $"eval_every must be 0 (off) or positive, got {EvalEvery}.");
        Require(EvalSamples > 3 && EvalSamples <= 100_000, $"eval_samples must be in [4, 100000], got {EvalSamples}.");
        Require(EvalSteps > 0 && EvalSteps <= 10_000, $"eval_steps must be in [1, 10000], got {EvalSteps}.");
        Require(GradClip >= 0, $"grad_clip must be 0 (off) or positive, got {GradClip}.");
        Require(Mediators.Zip(Mediators.Skip(1)).All(p => p.First < p.Second), $"mediators must increase, got {string.Join(",", Mediators)}.");
        return this;
    }

    /// <summary>
    /// <see cref="GradShards"/>, or when it is 0 the largest divisor of batch_size that is a multiple of grad_accum
    /// and at most max(8, grad_accum).
    /// </summary>
    public int EffectiveGradShards()
    {
        if (GradShards > 0) return GradShards;
        int limit = Math.Max(8, GradAccum);
        for (int s = Math.Min(limit, BatchSize); s >= 1; s--)
            if (BatchSize % s == 0 && s % GradAccum == 0) return s;
        return GradAccum;
    }

    /// <summary>Names of the resume-invariant fields whose values differ between two configs.</summary>
    public static IReadOnlyList<string> DifferingInvariants(TrainConfig a, TrainConfig b)
    {
        var ja = JsonSerializer.SerializeToElement(a, Options);
        var jb = JsonSerializer.SerializeToElement(b, Options);
        return ResumeInvariantFields.Where(f => ja.GetProperty(f).GetRawText() != jb.GetProperty(f).GetRawText()).ToArray();
    }
}
