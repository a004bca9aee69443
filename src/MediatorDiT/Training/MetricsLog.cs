using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace MediatorDiT.Training;

/// <summary>
/// metrics.jsonl in the run folder (one JSON object per logged step) and loss.svg, a loss curve drawn
/// from it. On resume, lines past the resumed step are dropped so the log reads as one run. A non-finite
/// value is written as the JSON string "NaN", "Infinity" or "-Infinity" (bare NaN/Infinity tokens, which
/// older versions wrote, are read too); a line that is no metrics entry (cut by a crash, edited) is
/// dropped on resume with a warning naming its line number.
/// </summary>
internal sealed partial class MetricsLog
{
    public sealed record Entry(long Step, double Loss, double GradNorm, double LearningRate, double ImagesPerSecond);

    private readonly string _jsonl, _svg;
    private readonly List<Entry> _entries;

    public MetricsLog(string runDir, long resumeStep, IProgress<string>? messages = null)
    {
        _jsonl = Path.Combine(runDir, "metrics.jsonl");
        _svg = Path.Combine(runDir, "loss.svg");
        _entries = RunLogLines.KeepThrough(_jsonl, resumeStep,
            (string line, out Entry entry, out string? problem) =>
            {
                entry = Parse(line, out string reason)!;
                problem = reason;
                return entry is not null;
            },
            e => e.Step, (_, e) => ToLine(e), "a metrics entry", messages);
    }

    public IReadOnlyList<Entry> Entries => _entries;

    public void Append(Entry entry)
    {
        _entries.Add(entry);
        File.AppendAllText(_jsonl, ToLine(entry) + "\n");
    }

    [GeneratedRegex(@"(?<=[:\[,]\s*)(-?Infinity|NaN)(?=\s*[,}\]])")]
    private static partial Regex BareNonFinite();

    /// <summary>One line of metrics.jsonl, or null with the reason it is not an entry.</summary>
    internal static Entry? Parse(string line, out string problem)
    {
        JsonElement e;
        try
        {
            e = JsonSerializer.Deserialize<JsonElement>(BareNonFinite().Replace(line, "\"$1\""));
        }
        catch (JsonException)
        {
            problem = "not valid JSON";
            return null;
        }
        if (e.ValueKind != JsonValueKind.Object)
        {
            problem = "not a JSON object";
            return null;
        }
        if (!e.TryGetProperty("step", out var stepElement) || stepElement.ValueKind != JsonValueKind.Number
            || !stepElement.TryGetInt64(out long step) || step < 0)
        {
            problem = "'step' must be a non-negative integer";
            return null;
        }
        double[] values = new double[4];
        string[] keys = ["loss", "grad_norm", "lr", "images_per_sec"];
        for (int k = 0; k < keys.Length; k++)
        {
            if (!e.TryGetProperty(keys[k], out var v) || !TryReadNumber(v, out values[k]))
            {
                problem = $"'{keys[k]}' must be a number, null, \"NaN\" or \"Infinity\"";
                return null;
            }
        }
        problem = "";
        return new Entry(step, values[0], values[1], values[2], values[3]);
    }

    private static bool TryReadNumber(JsonElement v, out double value)
    {
        value = double.NaN;
        return v.ValueKind switch
        {
            JsonValueKind.Number => v.TryGetDouble(out value),
            JsonValueKind.Null => true,
            JsonValueKind.String => v.GetString() switch
            {
                "NaN" => true,
                "Infinity" => (value = double.PositiveInfinity) > 0,
                "-Infinity" => (value = double.NegativeInfinity) < 0,
                _ => false,
            },
            _ => false,
        };
    }

    internal static string Number(double v) => double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture)
        : double.IsNaN(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"";

    internal static string ToLine(Entry e) => string.Create(CultureInfo.InvariantCulture,
        $"{{\"step\":{e.Step},\"loss\":{Number(e.Loss)},\"grad_norm\":{Number(e.GradNorm)},\"lr\":{Number(e.LearningRate)},\"images_per_sec\":{Number(e.ImagesPerSecond)}}}");

    /// <summary>Redraws loss.svg (log-scale loss against step).</summary>
    public void WriteSvg()
    {
        var points = _entries.Where(e => e.Loss > 0 && double.IsFinite(e.Loss)).ToArray();
        File.WriteAllText(_svg, LossCurveSvg(points.Select(e => (e.Step, e.Loss)).ToArray()));
    }

    public static string LossCurveSvg(IReadOnlyList<(long Step, double Loss)> points)
    {
        const int w = 640, h = 360, left = 60, right = 20, top = 20, bottom = 40;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        if (points.Count > 0)
        {
            double x0 = points[0].Step, x1 = Math.Max(points[^1].Step, x0 + 1);
            double y0 = Math.Log10(points.Min(p => p.Loss)), y1 = Math.Log10(points.Max(p => p.Loss));
            if (y1 - y0 < 1e-6) { y0 -= 0.5; y1 += 0.5; }
            double X(double s) => left + (s - x0) / (x1 - x0) * (w - left - right);
            double Y(double l) => top + (y1 - Math.Log10(l)) / (y1 - y0) * (h - top - bottom);
            sb.Append(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"");
            foreach (var (s, l) in points) sb.Append(CultureInfo.InvariantCulture, $"{X(s):F1},{Y(l):F1} ");
            sb.Append("\"/>\n");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"{h - 10}\">step {x0:F0}</text>\n");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{w - right}\" y=\"{h - 10}\" text-anchor=\"end\">step {x1:F0}</text>\n");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"5\" y=\"{top + 10}\">{Math.Pow(10, y1):G3}</text>\n");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"5\" y=\"{h - bottom}\">{Math.Pow(10, y0):G3}</text>\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{h - bottom}\" x2=\"{w - right}\" y2=\"{h - bottom}\" stroke=\"black\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{h - bottom}\" stroke=\"black\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{w / 2}\" y=\"{top - 5}\" text-anchor=\"middle\">training loss (log scale)</text>\n");
        sb.Append("</svg>\n");
        return sb.ToString();
    }
}
