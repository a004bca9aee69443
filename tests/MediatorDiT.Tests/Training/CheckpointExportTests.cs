using MediatorDiT.Models;
using MediatorDiT.IO;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Training;

/// <summary>`mdit export`: the EMA or raw weights of a run checkpoint as plain state dicts.</summary>
public class CheckpointExportTests
{
    [Fact]
    public void EmaExportOfTheLastCheckpointEqualsTheRunsOwnExport()
    {
        string data = TrainerTests.MakeData();
        string run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        var config = TrainerTests.Tiny(data, 6) with { Mediators = [1, 4] };
        new Trainer().Run(config, run, resume: false, new Trainer.Options(), CancellationToken.None);
        string outDir = Path.Combine(Path.GetDirectoryName(data)!, "exported");

        var written = CheckpointExport.Export(run, useEma: true, outDir);
        Assert.Equal(["ema-m1.safetensors", "ema-m4.safetensors"], written.Select(f => Path.GetFileName(f)!).ToArray());
        foreach (var name in new[] { "ema-m1.safetensors", "ema-m4.safetensors" })
        {
            var ours = SafeTensors.Read(Path.Combine(outDir, name));
            var runs = SafeTensors.Read(Path.Combine(run, name));
            Assert.Equal(runs.Tensors.Keys.Order(), ours.Tensors.Keys.Order());
            foreach (var (key, value) in runs.Tensors)
                Assert.Equal(value.ToFloat().Span.ToArray(), ours.Tensors[key].ToFloat().Span.ToArray());
            Assert.Equal(runs.Metadata[ModelFiles.ConfigMetadataKey], ours.Metadata[ModelFiles.ConfigMetadataKey]);
        }
    }

    [Fact]
    public void ModelExportHoldsTheCheckpointsRawWeightsWithEachCountsBiases()
    {
        string data = TrainerTests.MakeData();
        string run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        new Trainer().Run(TrainerTests.Tiny(data, 5) with { Mediators = [1, 4] }, run, resume: false, new Trainer.Options(), CancellationToken.None);
        string checkpoint = TrainingCheckpoint.Latest(run)!;
        var stored = SafeTensors.Read(checkpoint);
        string outDir = Path.Combine(Path.GetDirectoryName(data)!, "raw");

        CheckpointExport.Export(checkpoint, useEma: false, outDir);
        foreach (int m in new[] { 1, 4 })
        {
            var exported = SafeTensors.Read(Path.Combine(outDir, $"model-m{m}.safetensors"));
            Assert.NotEmpty(exported.Tensors);
            foreach (var (key, value) in exported.Tensors)
            {
                if (key == "pos_embed") continue; // fixed, not in the checkpoint's trainable set
                string source = stored.Tensors.ContainsKey("model." + key) ? "model." + key : "model." + key.Replace(".attn.", $".attn.m{m}.");
                Assert.Equal(stored.Tensors[source].ToFloat().Span.ToArray(), value.ToFloat().Span.ToArray());
            }
            // The raw weights differ from the EMA's after training steps.
            var ema = SafeTensors.Read(Path.Combine(run, $"ema-m{m}.safetensors"));
            Assert.NotEqual(ema.Tensors["x_embedder.proj.weight"].ToFloat().Span.ToArray(), exported.Tensors["x_embedder.proj.weight"].ToFloat().Span.ToArray());
        }
    }

    [Fact]
    public void ACheckpointLoadedAsModelWeightsNamesTheExportCommand()
    {
        string data = TrainerTests.MakeData();
        string run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        new Trainer().Run(TrainerTests.Tiny(data, 2), run, resume: false, new Trainer.Options(), CancellationToken.None);
        string checkpoint = TrainingCheckpoint.Latest(run)!;

        var e = Assert.Throws<MediatorDiTException>(() => ModelFiles.Load(checkpoint));
        Assert.Equal($"{checkpoint} is a training checkpoint of `mdit train` (network, EMA and optimizer state), not a model's weights: "
            + $"write its weights with `mdit export {checkpoint}` (the EMA weights; `--weights model` for the raw ones) and load the file it writes.", e.Message);
        // What the sentence says works: the exported EMA weights load.
        string exported = CheckpointExport.Export(checkpoint, useEma: true, Path.Combine(Path.GetDirectoryName(data)!, "exported")).Single();
        Assert.Equal(TrainerTests.Tiny(data, 2).ModelConfig!.HiddenSize, ModelFiles.Load(exported).Config.HiddenSize);
    }

    [Fact]
    public void AFileThatIsNoCheckpointIsRefusedByName()
    {
        var e = Assert.Throws<MediatorDiTException>(() =>
            CheckpointExport.Export(Fixtures.PathOf("mediator_grid4_m4.weights.safetensors"), true, Path.GetTempPath()));
        Assert.Contains("mediator_grid4_m4.weights.safetensors is not a MediatorDiT training checkpoint", e.Message);
    }
}
