using MediatorDiT.Models;
using MediatorDiT.IO;

namespace MediatorDiT.Training;

/// <summary>
/// Writes the weights held in a run checkpoint as plain state dicts with the official key names and the
/// model config in the header (what <see cref="Trainer"/> exports at the end of a run): the EMA weights or
/// the raw network weights, of any checkpoint, not only the last. A short run with a slow EMA (decay 0.9999
/// over a few thousand steps still averages in the initialisation) is often better served by the raw weights.
/// </summary>
public static class CheckpointExport
{
    /// <summary>
    /// checkpoint: a checkpoint file or a run folder (its latest checkpoint); useEma: EMA or raw weights.
    /// The checkpoint's checksum and values are verified first (see <see cref="TrainingCheckpoint"/>).
    /// Returns the files written: {stem}.safetensors, or {stem}-m{n}.safetensors per count of a shared ladder.
    /// </summary>
    public static IReadOnlyList<string> Export(string checkpoint, bool useEma, string outDir, string? stem = null)
    {
        string path = Directory.Exists(checkpoint)
            ? TrainingCheckpoint.Latest(checkpoint) ?? throw new MediatorDiTException($"run folder '{checkpoint}' has no checkpoint.")
            : File.Exists(checkpoint) ? checkpoint : throw new MediatorDiTException($"checkpoint '{checkpoint}' does not exist.");
        if (!ModelFiles.LooksLikeSafeTensors(path))
            throw new MediatorDiTException($"{path} is not a MediatorDiT training checkpoint (expected a .safetensors checkpoint of `mdit train`).");
        IReadOnlyDictionary<string, string> meta;
        using (var header = SafeTensors.Map(path)) meta = header.Metadata; // the header only; Load reads the tensors
        if (!meta.TryGetValue("format", out var format) || format != TrainingCheckpoint.Format || !meta.TryGetValue("config", out var json))
            throw new MediatorDiTException($"{path} is not a MediatorDiT training checkpoint (metadata 'format' is '{format ?? "missing"}', expected '{TrainingCheckpoint.Format}').");
        var config = TrainConfig.FromJson(json, $"{path} (metadata 'config')");
        var modelConfig = config.ModelConfig ?? throw new MediatorDiTException($"{path}: its config has no model_config.");
        var network = TrainableNetwork.Create(modelConfig, config.Mediators);
        var ema = TrainableNetwork.Create(modelConfig, config.Mediators);
        var optimizer = new AdamW(network.Parameters, config.LearningRate, weightDecay: config.WeightDecay);
        try
        {
            TrainingCheckpoint.Load(path, network, ema, optimizer);
        }
        catch (MediatorDiTException e) when (Directory.Exists(checkpoint))
        {
            // The latest of a run folder is damaged: point at the one that can be exported instead.
            long step = TrainingCheckpoint.List(checkpoint)[^1].Step;
            string previous = TrainingCheckpoint.PreviousValid(checkpoint, step) is { } p
                ? $"the previous valid checkpoint is {p.Path} (step {p.Step}); export it by its path"
                : "no earlier checkpoint of the run is valid either";
            throw new MediatorDiTException($"{e.Message.TrimEnd('.')}; {previous}.", e);
        }
        OutputFolder.EnsureWritable(outDir, "output folder");
        return Trainer.ExportWeights(useEma ? ema : network, outDir, stem ?? (useEma ? "ema" : "model"));
    }
}
