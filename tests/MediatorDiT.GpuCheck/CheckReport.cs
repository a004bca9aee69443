using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MediatorDiT.GpuCheck;

/// <summary>
/// The check's JSON report and its log: every case runs through <see cref="Run"/>, which records its values, its time,
/// and on failure its one-line message (the remaining cases still run); once the time budget is spent no new case
/// starts (each is recorded as skipped).
/// </summary>
public sealed class CheckReport
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly double _budgetSeconds;
    private readonly TextWriter _log;

    /// <summary>A report whose cases stop starting after <paramref name="budgetSeconds"/>, logging to <paramref name="log"/>.</summary>
    /// <param name="budgetSeconds">Seconds after which no new case starts.</param>
    /// <param name="log">Where the readable log goes.</param>
    public CheckReport(double budgetSeconds, TextWriter log) => (_budgetSeconds, _log) = (budgetSeconds, log);

    /// <summary>Where the report is saved after every case (so a run killed by a time limit still leaves its finished cases); null: only at the end.</summary>
    public string? SavePath { get; init; }

    /// <summary>
    /// When set, only the cases whose names start with one of these run (the others are recorded as skipped), and
    /// "libraries" and "device", which the others need; null: every case.
    /// </summary>
    public IReadOnlyList<string>? Only { get; init; }

    /// <summary>The whole report: header fields, then <c>cases</c>, one object per case by name.</summary>
    public JsonObject Root { get; } = new() { ["cases"] = new JsonObject() };

    private JsonObject Cases => (JsonObject)Root["cases"]!;

    /// <summary>Seconds since the check started.</summary>
    public double Elapsed => _clock.Elapsed.TotalSeconds;

    /// <summary>Writes a line to the log.</summary>
    /// <param name="line">The line.</param>
    public void Log(string line)
    {
        _log.WriteLine($"[{Elapsed,6:F1}s] {line}");
        _log.Flush();
    }

    /// <summary>
    /// Runs case <paramref name="name"/>: <paramref name="body"/> fills the case's object; its status becomes "ok", or
    /// "failed" with the exception's first line, or "skipped" when the budget was spent before it started.
    /// </summary>
    /// <param name="name">The case's key in <c>cases</c>.</param>
    /// <param name="body">Fills the case's values.</param>
    public void Run(string name, Action<JsonObject> body)
    {
        if (Only is not null && name is not ("libraries" or "device") && !Only.Any(p => name.StartsWith(p, StringComparison.Ordinal)))
        {
            Skip(name, $"not among --cases {string.Join(",", Only)}");
            return;
        }
        var entry = new JsonObject();
        Cases[name] = entry;
        if (Elapsed > _budgetSeconds)
        {
            entry["status"] = "skipped";
            entry["error"] = $"the time budget of {_budgetSeconds:F0} s was spent before this case started";
            Log($"{name}: skipped (time budget spent)");
            return;
        }
        Log($"{name}: start");
        var watch = Stopwatch.StartNew();
        try
        {
            body(entry);
            entry["status"] = "ok";
        }
        catch (Exception e)
        {
            var inner = e is TypeInitializationException or System.Reflection.TargetInvocationException && e.InnerException is not null ? e.InnerException! : e;
            entry["status"] = "failed";
            entry["error"] = $"{inner.GetType().Name}: {FirstLine(inner.Message)}";
            Log($"{name}: FAILED {entry["error"]}");
            _log.WriteLine(inner.ToString());
        }
        entry["seconds"] = Math.Round(watch.Elapsed.TotalSeconds, 3);
        Log($"{name}: {entry["status"]} in {watch.Elapsed.TotalSeconds:F1} s");
        foreach (var (key, value) in entry)
            if (key is not ("status" or "error" or "seconds")) _log.WriteLine($"    {key}: {value?.ToJsonString()}");
        _log.Flush();
        if (SavePath is not null) Save(SavePath);
    }

    /// <summary>Records case <paramref name="name"/> as skipped for <paramref name="reason"/> without running it.</summary>
    /// <param name="name">The case's key in <c>cases</c>.</param>
    /// <param name="reason">Why, one line.</param>
    public void Skip(string name, string reason)
    {
        Cases[name] = new JsonObject { ["status"] = "skipped", ["error"] = reason };
        Log($"{name}: skipped ({reason})");
    }

    /// <summary>A JSON number, or the string "NaN"/"Infinity" for a value that is not finite (plain JSON has no such numbers).</summary>
    /// <param name="value">The value.</param>
    public static JsonNode Number(double value) => double.IsFinite(value) ? JsonValue.Create(value) : JsonValue.Create(value.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Writes the report to <paramref name="path"/>, indented.</summary>
    /// <param name="path">The JSON file.</param>
    public void Save(string path)
    {
        Root["total_seconds"] = Math.Round(Elapsed, 3);
        File.WriteAllText(path, Root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static string FirstLine(string text)
    {
        int end = text.IndexOfAny(['\r', '\n']);
        return end < 0 ? text : text[..end];
    }
}
