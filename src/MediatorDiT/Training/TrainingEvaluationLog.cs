using System.Text;
using System.Text.Json;

namespace MediatorDiT.Training;

/// <summary>
/// eval.jsonl in the run folder: one JSON object per score of <see cref="TrainingEvaluation"/>
/// ({"step", "weights", "fid", "precision", "recall", "inception_score", "class_agreement", "samples"}). On resume,
/// lines past the resumed step (and lines that are no entry, with a warning) are dropped, as in metrics.jsonl.
/// </summary>
internal sealed class TrainingEvaluationLog
{
    public const string FileName = "eval.jsonl";
    private readonly string _path;

    public TrainingEvaluationLog(string runDir, long resumeStep, IProgress<string>? messages = null)
    {
        _path = Path.Combine(runDir, FileName);
        if (!File.Exists(_path)) return;
        var kept = new StringBuilder();
        string[] lines = File.ReadAllLines(_path);
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            if (StepOf(lines[i]) is long step)
            {
                if (step <= resumeStep) kept.Append(lines[i]).Append('\n');
            }
            else
            {
                messages?.Report($"warning: {_path} line {i + 1} was dropped, it is not an evaluation entry.");
            }
        }
        IO.AtomicFile.Write(_path, stream => stream.Write(Encoding.UTF8.GetBytes(kept.ToString())));
    }

    public void Append(TrainingEvaluation.Entry entry) => File.AppendAllText(_path, ToLine(entry) + "\n");

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

    private static long? StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("step", out var s) && s.TryGetInt64(out long step)
                && doc.RootElement.TryGetProperty("weights", out var w) && w.ValueKind == JsonValueKind.String
                ? step : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
