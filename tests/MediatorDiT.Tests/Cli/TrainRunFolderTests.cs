using System.Diagnostics;
using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Training;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit train` protects run folders: no overwriting, one process at a time, no ignored --out, damaged checkpoints named.</summary>
public class TrainRunFolderTests
{
    /// <summary>A tiny latent dataset and a config for it (steps given), in a new temp folder.</summary>
    private static (string Dir, string Config) Setup(long steps, long ckptEvery)
    {
        string dir = CliRunner.TempDir();
        var latents = new Tensor(8, 2, 8, 8);
        new RandomSource(5).FillGaussian(latents.Span, 0, 0.5f);
        string data = Path.Combine(dir, "latents.safetensors");
        LatentDataset.Save(data, StoredTensor.FromFloat(latents), Enumerable.Range(0, 8).Select(i => (long)(i % 2)).ToArray(), 2);
        string config = Path.Combine(dir, "run.json");
        File.WriteAllText(config, $$"""
            { "model": "custom", "model_config": {"hidden_size": 32, "depth": 1, "num_heads": 2, "patch_size": 2, "learn_sigma": false},
              "mediators": [4], "dataset": {{System.Text.Json.JsonSerializer.Serialize("latents:" + data)}}, "batch_size": 4,
              "steps": {{steps}}, "ckpt_every": {{ckptEvery}}, "log_every": 1 }
            """);
        return (dir, config);
    }

    [Fact]
    public void ResumeWithAnotherOutFolderIsRefused()
    {
        string dir = CliRunner.TempDir();
        string a = Path.Combine(dir, "a"), b = Path.Combine(dir, "b");
        var r = CliRunner.Run("train", "--resume", a, "--out", b, "--no-progress");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: --resume continues the run in '{a}' and writes there; --out '{b}' names another folder, so leave --out out (or give the same folder).",
            r.Stderr.Trim());
        Assert.False(Directory.Exists(b));
    }

    [Fact]
    public void ANewRunIntoAnExistingRunFolderIsRefusedAndExportStillGivesTheOldRun()
    {
        var (dir, config) = Setup(steps: 2, ckptEvery: 1);
        string run = Path.Combine(dir, "run");
        var first = CliRunner.Run("train", "--config", config, "--out", run, "--no-progress");
        Assert.True(first.ExitCode == 0, first.Stderr);
        byte[] weights = File.ReadAllBytes(Path.Combine(run, "ema.safetensors"));

        var second = CliRunner.Run("train", "--config", config, "--out", run, "--steps", "10", "--lr", "0.01", "--no-progress");
        Assert.Equal(1, second.ExitCode);
        Assert.StartsWith($"error: the run folder '{run}' is not empty (it holds checkpoints, config.json, ema.safetensors, ...); continue that run with --resume {run}, or give a new folder.",
            second.Stderr);
        Assert.DoesNotContain("   at ", second.Stderr);
        Assert.Contains("\"steps\": 2", File.ReadAllText(Path.Combine(run, "config.json")));
        var resume = CliRunner.Run("train", "--resume", run, "--no-progress");
        Assert.Contains("no steps run; already at step 2 of 2", resume.Stdout);
        var export = CliRunner.Run("export", run, "--out", Path.Combine(dir, "exported"));
        Assert.True(export.ExitCode == 0, export.Stderr);
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(dir, "exported", "ema.safetensors")));
    }

    [Fact]
    public async Task ASecondProcessIsRefusedWhileARunHoldsTheFolderAndAKilledRunLeavesNoLock()
    {
        var (dir, config) = Setup(steps: 1_000_000, ckptEvery: 1_000_000);
        string run = Path.Combine(dir, "run");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "mdit.dll"), "train", "--config", config, "--out", run, "--threads", "1", "--no-progress" })
            psi.ArgumentList.Add(a);
        using var holder = Process.Start(psi)!;
        var stderr = holder.StandardError.ReadToEndAsync();
        _ = holder.StandardOutput.ReadToEndAsync();
        try
        {
            // The run records its process id once it holds the lock, and logs once it trains.
            string metrics = Path.Combine(run, "metrics.jsonl");
            var waited = Stopwatch.StartNew();
            while (!(File.Exists(metrics) && new FileInfo(metrics).Length > 0) && !holder.HasExited && waited.Elapsed.TotalSeconds < 240)
                await Task.Delay(100);
            if (holder.HasExited) Assert.Fail($"mdit train ended early: {await stderr}");
            Assert.Equal($"{holder.Id}\n", File.ReadAllText(Path.Combine(run, RunFolderLock.FileName)));

            var second = CliRunner.Run("train", "--resume", run, "--no-progress");
            Assert.Equal(1, second.ExitCode);
            Assert.Equal($"error: the run folder '{run}' is in use by another training run (process {holder.Id}, recorded in run.lock); wait for it to end or stop it first.",
                second.Stderr.Trim());
            var e = Assert.Throws<MediatorDiTException>(() => RunFolderLock.Acquire(run));
            Assert.Contains($"(process {holder.Id}, recorded in run.lock)", e.Message);
        }
        finally
        {
            holder.Kill(); // SIGKILL: no handler runs, the OS drops the lock
            await holder.WaitForExitAsync();
        }
        using (RunFolderLock.Acquire(run)) { }
        // Another process gets past the lock too (the killed run had written no checkpoint yet).
        var after = CliRunner.Run("train", "--resume", run, "--no-progress");
        Assert.Equal($"error: cannot resume: {run} has no checkpoint yet.", after.Stderr.Trim());
    }

    [Fact]
    public void ADamagedLatestCheckpointIsNamedAndResumeFromValidTakesThePreviousOne()
    {
        var (dir, config) = Setup(steps: 2, ckptEvery: 1);
        string run = Path.Combine(dir, "run");
        var first = CliRunner.Run("train", "--config", config, "--out", run, "--no-progress");
        Assert.True(first.ExitCode == 0, first.Stderr);
        string one = TrainingCheckpoint.PathFor(run, 1), two = TrainingCheckpoint.PathFor(run, 2);
        RunSafetyTests.PutNaN(two, "ema.blocks.0.adaLN_modulation.1.weight");

        var refused = CliRunner.Run("train", "--resume", run, "--no-progress");
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith($"error: cannot resume from the latest checkpoint: {two}: the tensor data does not match its checksum", refused.Stderr);
        Assert.EndsWith($"the previous valid checkpoint is {one} (step 1), add --resume-from-valid to continue from it.", refused.Stderr.Trim());
        var export = CliRunner.Run("export", run, "--out", Path.Combine(dir, "exported"));
        Assert.Equal(1, export.ExitCode);
        Assert.EndsWith($"the previous valid checkpoint is {one} (step 1); export it by its path.", export.Stderr.Trim());

        var resumed = CliRunner.Run("train", "--resume", run, "--resume-from-valid", "--no-progress");
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Contains($"resumed from {one} at step 1", resumed.Stderr);
        Assert.Contains("trained to step 2 (last loss ", resumed.Stdout);
        Assert.Null(TrainingCheckpoint.Check(two));
        Assert.True(File.Exists(two + ".corrupt"));
    }
}
