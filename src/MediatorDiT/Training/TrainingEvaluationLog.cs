using System.Globalization;
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
    private readonly List<(long Step, string Weights, double Fid)> _points;

    public TrainingEvaluationLog(string runDir, long resumeStep, IProgress<string>? messages = null)
    {
        _path = Path.Combine(runDir, FileName);
        _svg = Path.Combine(runDir, PlotFileName);
        _points = RunLogLines.KeepThrough<(long Step, string Weights, double Fid)>(_path, resumeStep, Parse, p => p.Step, (line, _) => line,
            "an evaluation entry", messages);
    }

    public void Append(TrainingEvaluation.Entry entry)
    {
        File.AppendAllText(_path, ToLine(entry) + "\n");
        _points.Add((entry.Step, entry.Weights, entry.Report.Fid));
    }

    /// <summary>Redraws eval.svg from the entries so far.</summary>
    public void WriteSvg()
    {
        var series = TrainingEvaluation.WeightNames.Select(w => new PlotSeries(TrainingEvaluation.DisplayName(w),
            _points.Where(p => p.Weights == w && p.Fid > 0).Select(p => ((double)p.Step, Math.Log10(p.Fid))).ToArray(), Markers: true)).ToArray();
        SvgPlot.Write(_svg, SvgPlot.LineChart("sample quality while training", "step", "log10 FID (classifier features)", series));
    }

    // Numbers as metrics.jsonl writes them (a non-finite score, e.g. the FID of collapsed samples, as a JSON string).
    internal static string ToLine(TrainingEvaluation.Entry entry)
    {
        var r = entry.Report;
        string agreement = r.ClassAgreement is double a ? $",\"class_agreement\":{MetricsLog.Number(a)}" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{{\"step\":{entry.Step},\"weights\":{JsonSerializer.Serialize(entry.Weights)},\"fid\":{MetricsLog.Number(r.Fid)},\"precision\":{MetricsLog.Number(r.Precision)},\"recall\":{MetricsLog.Number(r.Recall)},\"inception_score\":{MetricsLog.Number(r.InceptionScore)}{agreement},\"samples\":{r.Count}}}");
    }

    // An entry's step, weights and FID (NaN where it is missing or not finite); false for a line that is no entry.
    private static bool Parse(string line, out (long Step, string Weights, double Fid) point, out string? problem)
    {
        point = default;
        problem = null;
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("step", out var s) || !s.TryGetInt64(out long step)
                || !root.TryGetProperty("weights", out var w) || w.ValueKind != JsonValueKind.String)
                return false;
            double fid = root.TryGetProperty("fid", out var f) && f.ValueKind == JsonValueKind.Number ? f.GetDouble() : double.NaN;
            point = (step, w.GetString()!, fid);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
