using MediatorDiT.Cli;
using MediatorDiT.Cli.Commands;
using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.Cli;

/// <summary>
/// Bad input that used to end in a .NET stack trace (or was silently changed) now gets one line on stderr
/// naming the option, what was expected and what was given, and exit code 1.
/// </summary>
public class ErrorMessageTests
{
    /// <summary>The run failed with exactly one line on stderr, an error naming every one of <paramref name="named"/>.</summary>
    private static void AssertOneErrorLine(CliRunner.Result r, params string[] named)
    {
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith("error:") || l.Contains("Exception") || l.StartsWith("at ") || l.StartsWith("Usage")).ToArray();
        Assert.True(lines.Length == 1 && lines[0].StartsWith("error: "), r.Stderr);
        foreach (string n in named) Assert.Contains(n, lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.DoesNotContain("Usage:", r.Stderr);
    }

    [Theory]
    [InlineData("--labels", "a", "'a' is not a whole number")] // was FormatException
    [InlineData("--labels", "99999999999", "'99999999999' is out of range")] // was OverflowException
    [InlineData("--steps", "2147483647", "2..10000, got 2147483647")] // was OutOfMemoryException
    [InlineData("--steps", "abc", "expects a whole number")] // was the parse error followed by the whole help
    [InlineData("--cfg-scale", "NaN", "got NaN")] // was taken as 1
    [InlineData("--cfg-scale", "Infinity", "got Infinity")]
    [InlineData("--batch-size", "0", "at least 1, got 0")] // was taken as 1
    [InlineData("--batch-size", "-1", "at least 1, got -1")]
    [InlineData("--threads", "0", "at least 1 (and at most 1024), got 0")] // was accepted
    [InlineData("--threads", "-4", "got -4")]
    public void SampleRefusesBadValuesInOneLineAndLeavesNoFolder(string option, string value, string expected)
    {
        string dir = CliRunner.TempDir();
        var ladder = SampleCommandTests.WriteLadder(dir);
        string output = Path.Combine(dir, "out", "nested");
        string[] steps = option == "--steps" ? [] : ["--steps", "4"];
        var r = CliRunner.Run(["sample", "--checkpoint", ladder[0], option, value, "--num-images", "2", .. steps,
            "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", output, "--no-progress"]);
        AssertOneErrorLine(r, option, expected);
        // The run created out/nested itself; failing, it removes both again.
        Assert.False(Directory.Exists(Path.Combine(dir, "out")), $"{Path.Combine(dir, "out")} was left behind");
    }

    [Fact]
    public void AFailedSampleRunKeepsAnOutputFolderThatExisted()
    {
        string dir = CliRunner.TempDir();
        var ladder = SampleCommandTests.WriteLadder(dir);
        string output = Path.Combine(dir, "existing");
        Directory.CreateDirectory(output);
        var r = CliRunner.Run("sample", "--checkpoint", ladder[0], "--labels", "a", "--steps", "4", "--save-latents", Path.Combine(dir, "l.safetensors"), "--out", output);
        AssertOneErrorLine(r, "--labels");
        Assert.True(Directory.Exists(output));
    }

    [Theory]
    [InlineData("sample", "--threads", "0")]
    [InlineData("train", "--threads", "0")]
    [InlineData("eval", "--threads", "-4")]
    [InlineData("demo", "--threads", "0")]
    [InlineData("redundancy", "--threads", "0")]
    [InlineData("search-thresholds", "--threads", "0")]
    [InlineData("train-classifier", "--threads", "0")]
    [InlineData("encode-latents", "--threads", "0")]
    [InlineData("vae encode", "--threads", "0")]
    [InlineData("vae decode", "--threads", "-4")]
    [InlineData("bench", "--threads", "0")]
    [InlineData("sample", "--batch-size", "0")]
    [InlineData("train", "--batch-size", "-1")]
    [InlineData("redundancy", "--batch-size", "0")]
    [InlineData("search-thresholds", "--batch-size", "0")]
    [InlineData("train-classifier", "--batch-size", "0")]
    [InlineData("train", "--sample-every", "-1")]
    [InlineData("train", "--eval-every", "-1")]
    [InlineData("redundancy", "--cfg-scale", "NaN")]
    [InlineData("search-thresholds", "--cfg-scale", "NaN")]
    [InlineData("forward", "--cfg-scale", "NaN")]
    [InlineData("redundancy", "--steps", "2147483647")]
    [InlineData("search-thresholds", "--steps", "2147483647")]
    [InlineData("demo", "--steps", "2147483647")]
    [InlineData("vae encode", "--image-size", "100000")]
    [InlineData("vae decode", "--image-size", "100000")]
    [InlineData("encode-latents", "--image-size", "100000")]
    [InlineData("train-classifier", "--image-size", "100000")]
    public void EveryCommandRefusesTheSameBadValueAsAParseError(string command, string option, string value)
    {
        var r = CliRunner.Run([.. command.Split(' '), option, value]);
        AssertOneErrorLine(r, option, $"got {value}", $"see 'mdit {command} --help'");
    }

    [Fact]
    public void TrainRefusesAMediatorCountOutsideIntsRange()
    {
        string dir = CliRunner.TempDir();
        var r = CliRunner.Run("train", "--mediators", "99999999999", "--out", Path.Combine(dir, "run"));
        AssertOneErrorLine(r, "--mediators", "'99999999999' is out of range");
        Assert.False(Directory.Exists(Path.Combine(dir, "run")));
    }

    [Fact]
    public void VaeEncodeRefusesAHugeImageSizeBeforeLoadingTheWeights()
    {
        string dir = CliRunner.TempDir();
        var r = CliRunner.Run("vae", "encode", "--weights", Fixtures.PathOf("vae.weights.safetensors"), "--inputs", Path.Combine(dir, "a.png"),
            "--out", Path.Combine(dir, "l.safetensors"), "--image-size", "100000");
        AssertOneErrorLine(r, "--image-size", $"a multiple of 8 in 8..{OptionValues.MaxImageSize}", "got 100000");
    }

    [Theory]
    [InlineData("num_classes", 2147483647L)]
    [InlineData("input_size", 1000000L)]
    public void SampleRefusesAConfigFileWithAHugeFieldNamingTheFileAndField(string field, long value)
    {
        string dir = CliRunner.TempDir();
        var ladder = SampleCommandTests.WriteLadder(dir);
        string config = Path.Combine(dir, "c.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(ModelFiles.Load(ladder[0]).Config.ToJson())!;
        json[field] = value;
        File.WriteAllText(config, json.ToJsonString());
        var r = CliRunner.Run("sample", "--checkpoint", ladder[0], "--config", config, "--steps", "4", "--save-latents", Path.Combine(dir, "l.safetensors"),
            "--out", Path.Combine(dir, "o"));
        AssertOneErrorLine(r, config, field, $"got {value}");
    }

    [Fact]
    public void EvalRefusesAFolderAsJsonOutputBeforeComputing()
    {
        string dir = CliRunner.TempDir();
        string folder = Path.Combine(dir, "metrics");
        Directory.CreateDirectory(folder);
        // No samples and no classifier exist: reaching them would be a different error.
        var r = CliRunner.Run("eval", "--json", folder, "--samples", Path.Combine(dir, "missing.npz"), "--classifier", Path.Combine(dir, "missing.safetensors"));
        AssertOneErrorLine(r, "--json", folder, "is a folder");
        Assert.False(File.Exists(folder + ".tmp"));
        Assert.Equal([folder], Directory.EnumerateFileSystemEntries(dir).ToArray());
    }

    [Theory]
    [InlineData("sample")]
    [InlineData("redundancy")]
    public void CheckpointAndLadderTogetherAreRefusedNotOneSilentlyDropped(string command)
    {
        string dir = CliRunner.TempDir();
        var ladder = SampleCommandTests.WriteLadder(dir);
        var r = CliRunner.Run(command, "--checkpoint", ladder[0], "--ladder", string.Join(",", ladder), "--steps", "4",
            "--out", Path.Combine(dir, "out"), "--no-progress");
        AssertOneErrorLine(r, "not both", $"--checkpoint {ladder[0]}", "--ladder");
        Assert.False(Directory.Exists(Path.Combine(dir, "out")));
    }

    [Fact]
    public void ALadderOfNoFilesIsRefused()
    {
        string dir = CliRunner.TempDir();
        var r = CliRunner.Run("sample", "--ladder", " , ", "--steps", "4", "--out", Path.Combine(dir, "out"), "--no-progress");
        AssertOneErrorLine(r, "--ladder names no weight files");
    }

    [Fact]
    public void AMisspeltGemmBackendIsRefusedNotIgnored()
    {
        var r = CliRunner.RunWithEnvironment(new Dictionary<string, string> { ["MDIT_GEMM"] = "openblass" }, "flops", "--model", "SiT-S/2");
        AssertOneErrorLine(r, "MDIT_GEMM='openblass'", "managed, openblas, reference or auto");
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void UnrecognisedOptionIsOneLine()
    {
        var r = CliRunner.Run("sample", "--bogus");
        AssertOneErrorLine(r, "'--bogus'", "see 'mdit sample --help'");
    }

    [Fact]
    public void UnexpectedExceptionsBecomeOneLineWithAnInternalErrorHint()
    {
        var (bug, bugCode) = CliApp.ErrorLine(new InvalidOperationException("the cache is in a bad state.\nsecond line"));
        Assert.Equal("error: the cache is in a bad state. second line (InvalidOperationException; internal error, please report it with the command line that caused it).", bug);
        Assert.Equal(1, bugCode);

        // An input error thrown inside a parallel loop keeps its own sentence, without the bug hint.
        var (input, _) = CliApp.ErrorLine(new AggregateException(new MediatorDiTException("--labels: class 12 is outside the model's 0..9.")));
        Assert.Equal("error: --labels: class 12 is outside the model's 0..9.", input);

        var (memory, memoryCode) = CliApp.ErrorLine(new OutOfMemoryException("Array dimensions exceeded supported range."));
        Assert.StartsWith("error: not enough memory (Array dimensions exceeded supported range)", memory);
        Assert.DoesNotContain("internal error", memory);
        Assert.Equal(1, memoryCode);

        Assert.Equal(("cancelled.", 130), CliApp.ErrorLine(new OperationCanceledException()));
    }

    [Fact]
    public async Task GuardTurnsAnUnexpectedExceptionIntoExitCodeOne()
    {
        int code = await CliApp.Guard(() => throw new NullReferenceException("boom"), CancellationToken.None);
        Assert.Equal(1, code);
    }
}
