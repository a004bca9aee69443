using System.Text.Json;
using System.Text.Json.Serialization;
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
    [JsonPropertyName("data_dir")] public string? DataDir { get; init; }
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 32;
    [JsonPropertyName("hflip")] public bool HorizontalFlip { get; init; }

    [JsonPropertyName("path")] public string Path { get; init; } = "Linear";
    [JsonPropertyName("prediction")] public string Prediction { get; init; } = "velocity";
    [JsonPropertyName("loss_weight")] public string LossWeight { get; init; } = "none";
    [JsonPropertyName("train_eps")] public double? TrainEps { get; init; }
    [JsonPropertyName("sample_eps")] public double? SampleEps { get; init; }

    [JsonPropertyName("batch_size")] public int BatchSize { get; init; } = 64;
    [JsonPropertyName("grad_accum")] public int GradAccum { get; init; } = 1;
    [JsonPropertyName("lr")] public double LearningRate { get; init; } = 1e-4;
    [JsonPropertyName("warmup_steps")] public int WarmupSteps { get; init; }
    [JsonPropertyName("weight_decay")] public double WeightDecay { get; init; }
    [JsonPropertyName("grad_clip")] public double GradClip { get; init; }
    [JsonPropertyName("ema_decay")] public double EmaDecay { get; init; } = 0.9999;
    [JsonPropertyName("class_dropout")] public double ClassDropout { get; init; } = 0.1;
    [JsonPropertyName("seed")] public ulong Seed { get; init; }
    [JsonPropertyName("steps")] public long Steps { get; init; } = 1000;

    /// <summary>
    /// Weights to start a new run from (a run checkpoint, an ema*.safetensors or an official .pt), resized to
    /// this run's token grid; the optimizer starts fresh. Ignored when resuming.
    /// </summary>
    [JsonPropertyName("init_from")] public string? InitFrom { get; init; }

    [JsonPropertyName("ckpt_every")] public long CheckpointEvery { get; init; } = 500;
    [JsonPropertyName("keep_last")] public int KeepLast { get; init; } = 3;
    [JsonPropertyName("log_every")] public long LogEvery { get; init; } = 10;
    [JsonPropertyName("sample_every")] public long SampleEvery { get; init; }
    [JsonPropertyName("sample_steps")] public int SampleSteps { get; init; } = 50;

    /// <summary>
    /// The network of model "custom" when no model_config is given: a small SiT for 32x32 images
    /// (patch 2: 256 tokens; hidden 192, 6 blocks, 3 heads), trainable on a CPU.
    /// </summary>
    public static ModelConfig DefaultCustomModel { get; } = new() { HiddenSize = 192, Depth = 6, NumHeads = 3, PatchSize = 2, LearnSigma = false };

    /// <summary>Fields that fix the network, the data and the optimisation; a resume must keep them.</summary>
    public static readonly string[] ResumeInvariantFields =
        ["model", "model_config", "mediators", "dataset", "image_size", "path", "prediction", "loss_weight", "batch_size", "grad_accum", "seed"];

    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    public string ToJson() => JsonSerializer.Serialize(this, Options);

    public static TrainConfig FromJson(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<TrainConfig>(json, Options) ?? throw new MediatorDiTException($"{source}: the training config is empty.");
        }
        catch (JsonException e)
        {
            throw new MediatorDiTException($"{source}: the training config is not valid JSON ({e.Message}).");
        }
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
        Require(LearningRate > 0, $"lr must be positive, got {LearningRate}.");
        Require(Steps > 0, $"steps must be positive, got {Steps}.");
        Require(EmaDecay >= 0 && EmaDecay < 1, $"ema_decay must be in [0, 1), got {EmaDecay}.");
        Require(ClassDropout >= 0 && ClassDropout < 1, $"class_dropout must be in [0, 1), got {ClassDropout}.");
        Require(CheckpointEvery > 0, $"ckpt_every must be positive, got {CheckpointEvery}.");
        Require(KeepLast > 0, $"keep_last must be positive, got {KeepLast}.");
        Require(LogEvery > 0, $"log_every must be positive, got {LogEvery}.");
        Require(SampleEvery >= 0, $"sample_every must be 0 (off) or positive, got {SampleEvery}.");
        Require(GradClip >= 0, $"grad_clip must be 0 (off) or positive, got {GradClip}.");
        Require(Mediators.Zip(Mediators.Skip(1)).All(p => p.First < p.Second), $"mediators must increase, got {string.Join(",", Mediators)}.");
        return this;
    }

    /// <summary>Names of the resume-invariant fields whose values differ between two configs.</summary>
    public static IReadOnlyList<string> DifferingInvariants(TrainConfig a, TrainConfig b)
    {
        var ja = JsonSerializer.SerializeToElement(a, Options);
        var jb = JsonSerializer.SerializeToElement(b, Options);
        return ResumeInvariantFields.Where(f => ja.GetProperty(f).GetRawText() != jb.GetProperty(f).GetRawText()).ToArray();
    }
}
