using System.Text.Json;

namespace MediatorDiT.Sampling;

/// <summary>
/// A dynamic schedule stored beside a ladder, <c>schedule.json</c>: <c>{"ratios": [0.9, 0.6], "first": 3}</c>
/// (the switch ratios and reference steps of <see cref="AdaptiveModelSchedule"/>, e.g. copied from the
/// best.json of `mdit search-thresholds`); other keys are ignored.
/// </summary>
public sealed record ScheduleFile(IReadOnlyList<double> Ratios, int First)
{
    /// <summary>The file's name in a ladder folder.</summary>
    public const string FileName = "schedule.json";

    /// <summary>The schedule in <paramref name="path"/>, or null when there is no such file.</summary>
    public static ScheduleFile? TryRead(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("ratios", out var ratios) || ratios.ValueKind != JsonValueKind.Array
                || !root.TryGetProperty("first", out var first) || !first.TryGetInt32(out int firstSteps))
                throw new MediatorDiTException($"{path}: expected an object with \"ratios\" (an array of numbers) and \"first\" (an integer), e.g. {{\"ratios\": [0.9, 0.6], \"first\": 3}}.");
            var values = new List<double>();
            foreach (var r in ratios.EnumerateArray())
                values.Add(r.ValueKind == JsonValueKind.Number ? r.GetDouble()
                    : throw new MediatorDiTException($"{path}: \"ratios\" must hold numbers, found {r.ValueKind.ToString().ToLowerInvariant()} {r.GetRawText()}."));
            return new ScheduleFile(values, firstSteps);
        }
        catch (JsonException e)
        {
            throw new MediatorDiTException($"{path}: not valid JSON ({e.Message.TrimEnd('.')}).", e);
        }
    }
}
