using System.Text;
using System.Text.Json;
using MediatorDiT.Evaluation;

namespace MediatorDiT.Training;

/// <summary>
/// eval.jsonl in the run folder: one JSON object per score of <see cref="TrainingEvaluation"/>
/// ({"step", "weights", "fid", "precision", "recall", "inception_score", "class_agreement", "samples"}). On resume,
/// lines past the resumed step (and lines that are no entry, with a warning) are dropped, as in metrics.jsonl.
/// eval.svg draws log10 FID against step for both weights.
/// </summary>
internal sealed class TrainingEvaluationLog
{
    public const string FileName = "eval.jsonl";
    public const string PlotFileName = "eval.svg";
    private readonly string _path, _svg;
    private readonly List<(long Step, string Weights, double Fid)> _points = [];

    public TrainingEvaluationLog(string runDir, long resumeStep, IProgress<string>? messages = null)
    {
        _path = Path.Combine(runDir, FileName);
        _svg = Path.Combine(runDir, PlotFileName);
        if (!File.Exists(_path)) return;
        var kept = new StringBuilder();
        string[] lines = File.ReadAllLines(_path);
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            if (Parse(lines[i]) is { } point)
            {
                if (point.Step > resumeStep) continue;
                kept.Append(lines[i]).Append('\n');
                _points.Add(point);
            }
            else
            {
                messages?.Report($"warning: {_path} line {i + 1} was dropped, it is not an evaluation entry.");
            }
        }
        IO.AtomicFile.Write(_path, stream => stream.Write(Encoding.UTF8.GetBytes(kept.ToString())));
    }

    public void Append(TrainingEvaluation.Entry entry)
    {
        File.AppendAllText(_path, ToLine(entry) + "\n");
        _points.Add((entry.Step, entry.Weights, entry.Report.Fid));
    }

    /// <summary>Redraws eval.svg from the entries so far.</summary>
    public void WriteSvg()
    {
        var series = TrainingEvaluation.WeightNames.Select(w => new PlotSeries(w == "ema" ? "EMA weights" : "raw weights",
            _points.Where(p => p.Weights == w && p.Fid > 0).Select(p => ((double)p.Step, Math.Log10(p.Fid))).ToArray(), Markers: true)).ToArray();
        SvgPlot.Write(_svg, SvgPlot.LineChart("sample quality while training", "step", "log10 FID (classifier features)", series));
    }

    internal static string ToLine(TrainingEvaluation.Entry entry)
    {
        var r = entry.Report;
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("step", entry.Step);
            json.WriteString("weights", entry.Weights);
            Number(json, "fid", r.Fid);
            Number(json, "precision", r.Precision);
            Number(json, "recall", r.Recall);
            Number(json, "inception_score", r.InceptionScore);
            if (r.ClassAgreement is double a) Number(json, "class_agreement", a);
            json.WriteNumber("samples", r.Count);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    // A non-finite score (FID of collapsed samples can overflow) is written as a string, which JSON can hold.
    private static void Number(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value)) json.WriteNumber(name, value);
        else json.WriteString(name, value.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    // An entry's step, weights and FID (NaN where it is missing or not finite); null for a line that is no entry.
    private static (long Step, string Weights, double Fid)? Parse(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("step", out var s) || !s.TryGetInt64(out long step)
                || !root.TryGetProperty("weights", out var w) || w.ValueKind != JsonValueKind.String)
                return null;
            double fid = root.TryGetProperty("fid", out var f) && f.ValueKind == JsonValueKind.Number ? f.GetDouble() : double.NaN;
            return (step, w.GetString()!, fid);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
