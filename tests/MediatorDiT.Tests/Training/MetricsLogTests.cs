using System.Text.Json;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Training;

/// <summary>metrics.jsonl stays JSON with non-finite values and survives malformed lines on resume.</summary>
public class MetricsLogTests
{
    private sealed class Collect : IProgress<string>
    {
        public List<string> Lines { get; } = [];
        public void Report(string value) => Lines.Add(value);
    }

    private static string NewDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "mdit-metrics-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    [Fact]
    public void NonFiniteValuesAreWrittenAsJsonAndReadBackOnResume()
    {
        string dir = NewDir();
        var written = new[]
        {
            new MetricsLog.Entry(1, 0.5, double.PositiveInfinity, 1e-3, 10),
            new MetricsLog.Entry(2, double.NaN, double.NegativeInfinity, 1e-3, double.NaN),
            new MetricsLog.Entry(3, 0.25, 2.5, 1e-3, 12),
        };
        var log = new MetricsLog(dir, 0);
        foreach (var e in written) log.Append(e);
        var lines = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl"));
        Assert.All(lines, l => JsonDocument.Parse(l).Dispose());
        Assert.Contains("\"grad_norm\":\"Infinity\"", lines[0]);

        var resumed = new MetricsLog(dir, 3);
        Assert.Equal(written, resumed.Entries);
    }

    [Fact]
    public void BareInfinityTokensOfOlderLogsAreReadBackAndRewrittenAsJson()
    {
        string dir = NewDir();
        string path = Path.Combine(dir, "metrics.jsonl");
        File.WriteAllText(path, "{\"step\":1,\"loss\":31.5,\"grad_norm\":Infinity,\"lr\":1000,\"images_per_sec\":9}\n"
            + "{\"step\":2,\"loss\":NaN,\"grad_norm\":-Infinity,\"lr\":1000,\"images_per_sec\":9}\n");
        var log = new MetricsLog(dir, 2);
        Assert.Equal([new MetricsLog.Entry(1, 31.5, double.PositiveInfinity, 1000, 9), new MetricsLog.Entry(2, double.NaN, double.NegativeInfinity, 1000, 9)],
            log.Entries);
        Assert.All(File.ReadAllLines(path), l => JsonDocument.Parse(l).Dispose());
    }

    [Fact]
    public void MalformedLinesAreDroppedWithAWarningNamingTheLine()
    {
        string dir = NewDir();
        string path = Path.Combine(dir, "metrics.jsonl");
        File.WriteAllLines(path,
        [
            "{\"step\":1,\"loss\":1.5,\"grad_norm\":2,\"lr\":0.001,\"images_per_sec\":9}",
            "{\"step\":1e30,\"loss\":1.5,\"grad_norm\":2,\"lr\":0.001,\"images_per_sec\":9}",
            "{\"step\":3,\"loss\":\"high\",\"grad_norm\":2,\"lr\":0.001,\"images_per_sec\":9}",
            "[1,2]",
            "{\"step\":5,\"loss\":1.25,\"grad_norm\":2,\"lr\":0.001,\"images_per_sec\":9}",
            "{\"step\":6,\"loss\":1.",
        ]);
        var messages = new Collect();
        var log = new MetricsLog(dir, 10, messages);
        Assert.Equal([1L, 5L], log.Entries.Select(e => e.Step));
        Assert.Equal(
        [
            $"warning: {path} line 2 was dropped, it is not a metrics entry ('step' must be a non-negative integer).",
            $"warning: {path} line 3 was dropped, it is not a metrics entry ('loss' must be a number, null, \"NaN\" or \"Infinity\").",
            $"warning: {path} line 4 was dropped, it is not a metrics entry (not a JSON object).",
            $"warning: {path} line 6 was dropped, it is not a metrics entry (not valid JSON).",
        ], messages.Lines);
        Assert.Equal(2, File.ReadAllLines(path).Length);
    }
}
