using System.Diagnostics;
using MediatorDiT.IO;
using MediatorDiT.Data;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Cli;

/// <summary>
/// SIGTERM to a running `mdit train` must end in a checkpoint at the step reached and exit code 130 (the CLI
/// handles the signal itself: System.CommandLine's own handler ended the process 2 s later, before a slow
/// step had finished, so no checkpoint was written).
/// </summary>
public class TrainSignalTests
{
    [Fact]
    public async Task SigtermWritesCheckpointAndExits130()
    {
        if (!OperatingSystem.IsLinux()) return;
        string dir = CliRunner.TempDir();
        var latents = new Tensor(16, 4, 16, 16);
        new RandomSource(5).FillGaussian(latents.Span, 0, 0.5f);
        string data = Path.Combine(dir, "latents.safetensors");
        LatentDataset.Save(data, StoredTensor.FromFloat(latents), Enumerable.Range(0, 16).Select(i => (long)(i % 2)).ToArray(), 2);
        // A run far longer than the test: it only ends through the signal.
        File.WriteAllText(Path.Combine(dir, "run.json"), """
            { "model": "custom", "model_config": {"hidden_size": 192, "depth": 4, "num_heads": 4, "patch_size": 2, "learn_sigma": false},
              "mediators": [], "batch_size": 8, "steps": 100000, "ckpt_every": 100000, "log_every": 1 }
            """);
        string run = Path.Combine(dir, "run");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "mdit.dll"), "train", "--config", Path.Combine(dir, "run.json"),
                     "--dataset", "latents:" + data, "--out", run, "--threads", "1", "--no-progress" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        // Wait until the first step is logged (metrics.jsonl), then signal in the middle of a later step.
        string metrics = Path.Combine(run, "metrics.jsonl");
        var waited = Stopwatch.StartNew();
        while (!(File.Exists(metrics) && new FileInfo(metrics).Length > 0) && !p.HasExited && waited.Elapsed.TotalSeconds < 240)
            await Task.Delay(100);
        if (p.HasExited) Assert.Fail($"mdit train ended early: {await stderr}");
        Assert.True(File.Exists(metrics), "no step was logged in 240 s");
        using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString()])) kill.WaitForExit();
        using (var limit = new CancellationTokenSource(TimeSpan.FromMinutes(5))) await p.WaitForExitAsync(limit.Token);
        Assert.Equal(130, p.ExitCode);
        string? checkpoint = TrainingCheckpoint.Latest(run);
        Assert.NotNull(checkpoint);
        long step = long.Parse(Path.GetFileNameWithoutExtension(checkpoint!));
        if (step < 1) Assert.Fail($"checkpoint at step {step}; output: {await stdout}{await stderr}");
        Assert.Contains($"checkpoint at step {step} saved", await stderr);
    }
}
