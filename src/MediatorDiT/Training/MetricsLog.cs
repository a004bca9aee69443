using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MediatorDiT.Training;

/// <summary>
/// metrics.jsonl in the run folder (one JSON object per logged step) and loss.svg, a loss curve drawn
/// from it. On resume, lines past the resumed step are dropped so the log reads as one run.
/// </summary>
public sealed class MetricsLog
{
    public sealed record Entry(long Step, double Loss, double GradNorm, double LearningRate, double ImagesPerSecond);

    private readonly string _jsonl, _svg;
    private readonly List<Entry> _entries = [];

    public MetricsLog(string runDir, long resumeStep)
    {
        _jsonl = Path.Combine(runDir, "metrics.jsonl");
        _svg = Path.Combine(runDir, "loss.svg");
        if (File.Exists(_jsonl))
        {
            foreach (var line in File.ReadAllLines(_jsonl))
            {
                if (string.IsNullOrWhiteSpace(line)) continue;
                try
                {
                    var e = JsonSerializer.Deserialize<JsonElement>(line);
                    var entry = new Entry(e.GetProperty("step").GetInt64(), e.GetProperty("loss").GetDouble(), e.GetProperty("grad_norm").GetDouble(),
                        e.GetProperty("lr").GetDouble(), e.GetProperty("images_per_sec").GetDouble());
                    if (entry.Step <= resumeStep) _entries.Add(entry);
                }
                catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    // A line cut by a crash mid-write: skip it.
                }
            }
            File.WriteAllLines(_jsonl, _entries.Select(ToLine));
        }
    }

    public IReadOnlyList<Entry> Entries => _entries;

    public void Append(Entry entry)
    {
        _entries.Add(entry);
        File.AppendAllText(_jsonl, ToLine(entry) + "\n");
    }

    private static string ToLine(Entry e) => string.Create(CultureInfo.InvariantCulture,
        $"{{\"step\":{e.Step},\"loss\":{e.Loss:R},\"grad_norm\":{e.GradNorm:R},\"lr\":{e.LearningRate:R},\"images_per_sec\":{e.ImagesPerSecond:R}}}");

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
