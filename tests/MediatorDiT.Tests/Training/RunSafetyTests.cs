using System.Buffers.Binary;
using System.Text.Json;
using System.Text.RegularExpressions;
using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Training;

/// <summary>
/// Run folders that are never lost or poisoned: a new run refuses an existing run, one run at a time holds a
/// folder, interrupted writes are cleaned up, divergence is never checkpointed, damaged checkpoints are found.
/// </summary>
public class RunSafetyTests
{
    private sealed class Collect : IProgress<string>
    {
        public List<string> Lines { get; } = [];
        public void Report(string value) => Lines.Add(value);
    }

    private static string RunDir(string data, string name = "run") => Path.Combine(Path.GetDirectoryName(data)!, name);

    [Fact]
    public void ANewRunIntoAnExistingRunFolderIsRefusedAndTheRunIsLeftAsItWas()
    {
        string data = TrainerTests.MakeData();
        string run = RunDir(data);
        new Trainer().Run(TrainerTests.Tiny(data, 5), run, false, new Trainer.Options(), CancellationToken.None);
        string config = File.ReadAllText(Path.Combine(run, "config.json"));
        string metrics = File.ReadAllText(Path.Combine(run, "metrics.jsonl"));

        var e = Assert.Throws<MediatorDiTException>(() =>
            new Trainer().Run(TrainerTests.Tiny(data, 10) with { LearningRate = 5e-4 }, run, false, new Trainer.Options(), CancellationToken.None));
        Assert.Contains($"the run folder '{run}' is not empty", e.Message);
        Assert.Contains($"--resume {run}", e.Message);
        Assert.Equal(config, File.ReadAllText(Path.Combine(run, "config.json")));
        Assert.Equal(metrics, File.ReadAllText(Path.Combine(run, "metrics.jsonl")));
        Assert.Equal([5L], TrainingCheckpoint.List(run).Select(c => c.Step));
    }

    [Fact]
    public void ANewRunStartsInAFolderHoldingOnlyALockFileAndLeftoversOfInterruptedWrites()
    {
        string data = TrainerTests.MakeData();
        string run = RunDir(data);
        Directory.CreateDirectory(run);
        // What a start that failed before training (run.lock) and a crash mid-write leave behind.
        File.WriteAllText(Path.Combine(run, RunFolderLock.FileName), "12345\n");
        File.WriteAllText(Path.Combine(run, "config.json.tmp-0123456789ab"), "{");
        File.WriteAllText(Path.Combine(run, ".write-test-999999"), "ok");
        var result = new Trainer().Run(TrainerTests.Tiny(data, 5), run, false, new Trainer.Options(), CancellationToken.None);
        Assert.Equal(5, result.Step);
        Assert.False(File.Exists(Path.Combine(run, "config.json.tmp-0123456789ab")));
        Assert.False(File.Exists(Path.Combine(run, ".write-test-999999")));
    }

    [Fact]
    public void ResumeRemovesTempFilesOfInterruptedWritesButNothingElse()
    {
        string data = TrainerTests.MakeData();
        string run = RunDir(data);
        new Trainer().Run(TrainerTests.Tiny(data, 5), run, false, new Trainer.Options(), CancellationToken.None);
        string checkpoints = Path.Combine(run, "checkpoints");
        string empty = Path.Combine(checkpoints, "0000010.safetensors.tmp-0123456789ab");
        string full = Path.Combine(checkpoints, "0000010.safetensors.tmp-abcdef012345");
        string probe = Path.Combine(run, ".write-test-424242");
        string unrelated = Path.Combine(run, "notes.txt.tmp-mine");
        File.WriteAllBytes(empty, []);
        File.Copy(TrainingCheckpoint.Latest(run)!, full);
        File.WriteAllText(probe, "ok");
        File.WriteAllText(unrelated, "kept");
        var messages = new Collect();

        new Trainer().Run(TrainerTests.Tiny(data, 10), run, true, new Trainer.Options { Messages = messages }, CancellationToken.None);
        foreach (var stale in new[] { empty, full, probe })
        {
            Assert.False(File.Exists(stale), stale);
            Assert.Contains($"removed {stale}, left by an interrupted write", messages.Lines);
        }
        Assert.True(File.Exists(unrelated));
    }

    [Fact]
    public void ALockedRunFolderIsRefusedNamingTheHoldersProcessAndIsFreeAfterRelease()
    {
        string data = TrainerTests.MakeData();
        string run = RunDir(data);
        new Trainer().Run(TrainerTests.Tiny(data, 5), run, false, new Trainer.Options(), CancellationToken.None);
        using (RunFolderLock.Acquire(run))
        {
            var e = Assert.Throws<MediatorDiTException>(() =>
                new Trainer().Run(TrainerTests.Tiny(data, 10), run, true, new Trainer.Options(), CancellationToken.None));
            Assert.Equal($"the run folder '{run}' is in use by another training run (process {Environment.ProcessId}, this process, recorded in run.lock); wait for it to end or stop it first.", e.Message);
            Assert.Equal([5L], TrainingCheckpoint.List(run).Select(c => c.Step));
        }
        Assert.Equal(10, new Trainer().Run(TrainerTests.Tiny(data, 10), run, true, new Trainer.Options(), CancellationToken.None).Step);
    }

    [Fact]
    public void DivergenceIsNeverCheckpointedAndTheNamedCheckpointResumes()
    {
        // lr 1000: the loss explodes at once, then the gradient norm overflows; keep_last 1 used to prune
        // every finite checkpoint and keep one with infinities in opt.exp_avg_sq.
        string data = TrainerTests.MakeData();
        string run = RunDir(data);
        var config = TrainerTests.Tiny(data, 40) with { LearningRate = 1000, CheckpointEvery = 1, KeepLast = 1 };
        var messages = new Collect();
        var e = Assert.Throws<MediatorDiTException>(() =>
            new Trainer().Run(config, run, false, new Trainer.Options { Messages = messages }, CancellationToken.None));

        var stop = Regex.Match(e.Message, @"at step (\d+); stopped without checkpointing it \(the last good checkpoint is (.+?), step (\d+)");
        Assert.True(stop.Success, e.Message);
        long failed = long.Parse(stop.Groups[1].Value), good = long.Parse(stop.Groups[3].Value);
        string named = stop.Groups[2].Value;
        Assert.Equal(TrainingCheckpoint.PathFor(run, good), named);
        Assert.True(File.Exists(named));
        Assert.Contains(messages.Lines, m => m.StartsWith("warning: at step ") && m.Contains("times its running mean"));
        // Nothing at or after the failing step was checkpointed; everything kept is finite.
        Assert.All(TrainingCheckpoint.List(run), c =>
        {
            Assert.True(c.Step < failed);
            Assert.Null(TrainingCheckpoint.Check(c.Path));
        });
        // metrics.jsonl is JSON throughout and records the failing step's non-finite value.
        var lines = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        var last = lines.Single(l => l.GetProperty("step").GetInt64() == failed);
        Assert.True(last.GetProperty("loss").ValueKind == JsonValueKind.String || last.GetProperty("grad_norm").ValueKind == JsonValueKind.String);

        // The named checkpoint is a usable state: with a sane lr the run continues with finite losses.
        foreach (var c in TrainingCheckpoint.List(run).Where(c => c.Step > good)) File.Delete(c.Path);
        var resumed = new Trainer().Run(config with { LearningRate = 1e-4, Steps = good + 3 }, run, true, new Trainer.Options(), CancellationToken.None);
        Assert.Equal(good + 3, resumed.Step);
        Assert.True(double.IsFinite(resumed.LastLoss));
    }

    [Fact]
    public void ALossExplosionWarnsAndTheCheckpointBeforeItIsNeverPruned()
    {
        // lr 1 on the tiny model: the loss jumps by orders of magnitude and stays there, finite, to the end.
        string data = TrainerTests.MakeData();
        string run = RunDir(data);
        var config = TrainerTests.Tiny(data, 20) with { LearningRate = 1, CheckpointEvery = 1, KeepLast = 1 };
        var messages = new Collect();
        new Trainer().Run(config, run, false, new Trainer.Options { Messages = messages }, CancellationToken.None);

        var warning = messages.Lines.Select(m => Regex.Match(m, @"^warning: at step (\d+) the loss (\S+) is (\S+) times its running mean")).Single(m => m.Success);
        Assert.True(double.Parse(warning.Groups[3].Value) >= Trainer.DivergenceFactor);
        long onset = long.Parse(warning.Groups[1].Value);
        var end = messages.Lines.Select(m => Regex.Match(m, @"^warning: the run ended with the loss still diverging \(.+\); (.+), step (\d+), written before it began, was kept\.$")).Single(m => m.Success);
        Assert.Equal(onset - 1, long.Parse(end.Groups[2].Value));
        Assert.Equal([onset - 1, 20L], TrainingCheckpoint.List(run).Select(c => c.Step));
        Assert.Equal(TrainingCheckpoint.PathFor(run, onset - 1), end.Groups[1].Value);
    }

    /// <summary>Overwrites the first float of a tensor in a safetensors file with a NaN, as one damaged sector would.</summary>
    internal static void PutNaN(string path, string key)
    {
        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        long begin = header.RootElement.GetProperty(key).GetProperty("data_offsets")[0].GetInt64();
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan((int)(8 + headerLength + begin)), float.NaN);
        File.WriteAllBytes(path, bytes);
    }

    private const string DamagedKey = "ema.blocks.0.adaLN_modulation.1.weight";

    [Fact]
    public void ADamagedLatestCheckpointIsDetectedOnResumeAndExportAndNamesThePreviousValidOne()
    {
        string data = TrainerTests.MakeData();
        string run = RunDir(data);
        new Trainer().Run(TrainerTests.Tiny(data, 10), run, false, new Trainer.Options(), CancellationToken.None);
        string five = TrainingCheckpoint.PathFor(run, 5), ten = TrainingCheckpoint.PathFor(run, 10);
        PutNaN(ten, DamagedKey);

        var resume = Assert.Throws<MediatorDiTException>(() =>
            new Trainer().Run(TrainerTests.Tiny(data, 15), run, true, new Trainer.Options(), CancellationToken.None));
        Assert.Matches($"^cannot resume from the latest checkpoint: {Regex.Escape(ten)}: the tensor data does not match its checksum \\(metadata 'data_crc32' is [0-9a-f]{{8}}, the data gives [0-9a-f]{{8}}\\); the file is corrupt; "
            + $"the previous valid checkpoint is {Regex.Escape(five)} \\(step 5\\), add --resume-from-valid to continue from it\\.$", resume.Message);

        var exportRun = Assert.Throws<MediatorDiTException>(() => CheckpointExport.Export(run, true, RunDir(data, "out")));
        Assert.Contains($"{ten}: the tensor data does not match its checksum", exportRun.Message);
        Assert.EndsWith($"the previous valid checkpoint is {five} (step 5); export it by its path.", exportRun.Message);
        var exportFile = Assert.Throws<MediatorDiTException>(() => CheckpointExport.Export(ten, true, RunDir(data, "out")));
        Assert.EndsWith("the file is corrupt.", exportFile.Message);
        Assert.False(File.Exists(Path.Combine(RunDir(data, "out"), "ema.safetensors")));
    }

    [Fact]
    public void ResumeFromValidContinuesFromThePreviousCheckpointBitForBit()
    {
        string data = TrainerTests.MakeData();
        string straight = RunDir(data, "straight"), run = RunDir(data);
        new Trainer().Run(TrainerTests.Tiny(data, 15), straight, false, new Trainer.Options(), CancellationToken.None);
        new Trainer().Run(TrainerTests.Tiny(data, 10), run, false, new Trainer.Options(), CancellationToken.None);
        string ten = TrainingCheckpoint.PathFor(run, 10);
        PutNaN(ten, DamagedKey);
        var messages = new Collect();

        new Trainer().Run(TrainerTests.Tiny(data, 15), run, true, new Trainer.Options { Messages = messages, ResumeFromValid = true }, CancellationToken.None);
        Assert.Contains($"warning: {ten} fails its checks; renamed to 0000010.safetensors.corrupt", messages.Lines);
        Assert.Contains($"resumed from {TrainingCheckpoint.PathFor(run, 5)} at step 5", messages.Lines);
        Assert.True(File.Exists(ten + ".corrupt"));
        var a = SafeTensors.Read(TrainingCheckpoint.Latest(straight)!);
        var b = SafeTensors.Read(TrainingCheckpoint.Latest(run)!);
        Assert.Equal(TrainingCheckpoint.PathFor(run, 15), b.Path);
        foreach (var (key, tensor) in a.Tensors) Assert.Equal(tensor.Bytes.ToArray(), b.Tensors[key].Bytes.ToArray());
    }

    [Fact]
    public void ADamagedCheckpointIsRefusedAsInitFrom()
    {
        string data = TrainerTests.MakeData();
        string run = RunDir(data);
        new Trainer().Run(TrainerTests.Tiny(data, 5), run, false, new Trainer.Options(), CancellationToken.None);
        string five = TrainingCheckpoint.PathFor(run, 5);
        PutNaN(five, DamagedKey);
        var e = Assert.Throws<MediatorDiTException>(() =>
            new Trainer().Run(TrainerTests.Tiny(data, 5) with { InitFrom = five }, RunDir(data, "tuned"), false, new Trainer.Options(), CancellationToken.None));
        Assert.StartsWith($"{five}: the tensor data does not match its checksum", e.Message);
        Assert.Empty(TrainingCheckpoint.List(RunDir(data, "tuned")));
    }

    /// <summary>Rewrites a checkpoint with its metadata changed (null removes the key).</summary>
    private static void EditMetadata(string path, string key, string? value)
    {
        var file = SafeTensors.Read(path);
        var metadata = file.Metadata.ToDictionary();
        if (value is null) metadata.Remove(key);
        else metadata[key] = value;
        SafeTensors.Write(path, file.Tensors.ToDictionary(), metadata);
    }

    [Fact]
    public void ACheckpointWithoutAChecksumStillLoadsButANaNInItIsFound()
    {
        string data = TrainerTests.MakeData();
        string run = RunDir(data);
        new Trainer().Run(TrainerTests.Tiny(data, 10), run, false, new Trainer.Options(), CancellationToken.None);
        string ten = TrainingCheckpoint.PathFor(run, 10);
        Assert.True(SafeTensors.Read(ten).Metadata.ContainsKey(TrainingCheckpoint.ChecksumKey));
        foreach (var (_, path) in TrainingCheckpoint.List(run)) EditMetadata(path, TrainingCheckpoint.ChecksumKey, null);

        Assert.Null(TrainingCheckpoint.Check(ten));
        Assert.Equal(12, new Trainer().Run(TrainerTests.Tiny(data, 12), run, true, new Trainer.Options(), CancellationToken.None).Step);

        string twelve = TrainingCheckpoint.PathFor(run, 12);
        EditMetadata(twelve, TrainingCheckpoint.ChecksumKey, null);
        PutNaN(twelve, DamagedKey);
        Assert.Equal($"{twelve}: tensor '{DamagedKey}' holds a NaN or infinity; the checkpoint is unusable.", TrainingCheckpoint.Check(twelve));
    }

    [Theory]
    [InlineData("step", "abc", "must be a non-negative integer, found 'abc'")]
    [InlineData("step", null, "is missing")]
    [InlineData("rng", null, "is missing")]
    [InlineData("rng", "1,2,x", "must be 6 comma-separated unsigned integers (the generator state), found '1,2,x'")]
    [InlineData("opt_steps", null, "is missing")]
    [InlineData("opt_steps", "{\"a\":", "must be a JSON object of non-negative per-parameter step counts, found '{\"a\":'")]
    [InlineData("config", null, "is missing")]
    [InlineData("config", "{nope", "the training config is not valid JSON")]
    [InlineData("data_crc32", "xyz", "must be 8 hexadecimal digits, found 'xyz'")]
    public void BadCheckpointMetadataIsOneSentenceNamingFileAndKey(string key, string? value, string expected)
    {
        string data = TrainerTests.MakeData();
        string run = RunDir(data);
        var config = TrainerTests.Tiny(data, 5);
        new Trainer().Run(config, run, false, new Trainer.Options(), CancellationToken.None);
        string path = TrainingCheckpoint.PathFor(run, 5);
        EditMetadata(path, key, value);

        var resolved = Trainer.Resolve(config, new SampleShape(2, 8, 8), 3);
        var network = TrainableNetwork.Create(resolved.ModelConfig!, resolved.Mediators);
        var ema = TrainableNetwork.Create(resolved.ModelConfig!, resolved.Mediators);
        var e = Assert.Throws<MediatorDiTException>(() => TrainingCheckpoint.Load(path, network, ema, new AdamW(network.Parameters)));
        Assert.StartsWith($"{path}", e.Message);
        Assert.Contains($"metadata '{key}'", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }
}
