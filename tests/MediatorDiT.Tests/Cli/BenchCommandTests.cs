using System.Text.Json;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit bench`: option checking and the JSON it writes (the timed cases themselves belong in benchmarks).</summary>
public class BenchCommandTests
{
    [Fact]
    public void RejectsZeroThreadsInOneSentence()
    {
        var r = CliRunner.Run("bench", "--threads", "0");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--threads must be at least 1", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void WritesJsonWithTheMachineDescriptionIntoANewFolder()
    {
        string path = Path.Combine(CliRunner.TempDir(), "new", "bench.json");
        var r = CliRunner.Run("bench", "--memory-only", "--no-xl", "--no-large", "--threads", "1", "--json", path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("threads 1 of", r.Stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        Assert.Equal(1, root.GetProperty("threads").GetInt32());
        Assert.Equal(Environment.ProcessorCount, root.GetProperty("processor_count").GetInt32());
        Assert.Contains("Vector512", root.GetProperty("cpu_features").GetString());
        Assert.Equal(0, root.GetProperty("cases").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("xl_sampling_peak_bytes").ValueKind);
    }
}
