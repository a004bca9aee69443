using MediatorDiT.Tests.Evaluation;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit train --resume` on a run already at its last step says so instead of printing a NaN loss.</summary>
public class TrainResumeMessageTests
{
    [Fact]
    public void ResumingAFinishedRunReportsNoStepsRun()
    {
        string dir = CliRunner.TempDir();
        string data = SyntheticDigits.CreateDataDir();
        string config = Path.Combine(dir, "run.json");
        File.WriteAllText(config, $$"""
            {"model": "custom", "model_config": {"hidden_size": 32, "depth": 1, "num_heads": 2, "patch_size": 4, "learn_sigma": false},
             "mediators": [4], "dataset": "mnist", "data_dir": {{System.Text.Json.JsonSerializer.Serialize(data)}}, "batch_size": 4,
             "steps": 2, "ckpt_every": 1, "log_every": 1}
            """);
        string run = Path.Combine(dir, "run");
        var first = CliRunner.Run("train", "--config", config, "--out", run, "--no-progress");
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Contains("trained to step 2 (last loss ", first.Stdout);
        var again = CliRunner.Run("train", "--resume", run, "--no-progress");
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Contains("no steps run; already at step 2 of 2", again.Stdout);
        Assert.DoesNotContain("NaN", again.Stdout);
    }

    [Fact]
    public void ResumingAFolderThatIsNotARunSaysWhich()
    {
        string dir = CliRunner.TempDir();
        string missing = Path.Combine(dir, "nope");
        var r = CliRunner.Run("train", "--resume", missing, "--no-progress");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: --resume {missing}: the run folder does not exist.", r.Stderr.Trim());

        string empty = Path.Combine(dir, "empty");
        Directory.CreateDirectory(empty);
        r = CliRunner.Run("train", "--resume", empty, "--no-progress");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith($"error: --resume {empty}: the folder is not a run folder (it has no config.json)", r.Stderr.Trim());
        Assert.Empty(Directory.EnumerateFileSystemEntries(empty));
    }
}
