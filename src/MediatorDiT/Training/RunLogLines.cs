namespace MediatorDiT.Training;

/// <summary>
/// The resume rule of a run folder's JSON-lines logs (metrics.jsonl, eval.jsonl): entries past the resumed step are
/// dropped, and so are lines that are no entry (a crash's cut line, an edit), each with a warning naming its line, so
/// the log reads as one run. The file is rewritten atomically with the lines kept.
/// </summary>
internal static class RunLogLines
{
    /// <summary>Reads the entry of one line; false with the reason it is none (null: no reason given).</summary>
    public delegate bool Parser<T>(string line, out T entry, out string? problem);

    /// <param name="path">the log; nothing happens when it does not exist</param>
    /// <param name="resumeStep">the step the run resumes from</param>
    /// <param name="parse">reads one line</param>
    /// <param name="stepOf">an entry's step</param>
    /// <param name="lineOf">what is written back for a kept line and its entry</param>
    /// <param name="kind">what an entry is, for the warning ("a metrics entry")</param>
    /// <param name="messages">receives the warnings</param>
    /// <returns>the entries kept, in file order</returns>
    public static List<T> KeepThrough<T>(string path, long resumeStep, Parser<T> parse, Func<T, long> stepOf,
        Func<string, T, string> lineOf, string kind, IProgress<string>? messages)
    {
        var kept = new List<T>();
        if (!File.Exists(path)) return kept;
        var text = new System.Text.StringBuilder();
        string[] lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            if (parse(lines[i], out T entry, out string? problem))
            {
                if (stepOf(entry) > resumeStep) continue;
                kept.Add(entry);
                text.Append(lineOf(lines[i], entry)).Append('\n');
            }
            else
            {
                messages?.Report($"warning: {path} line {i + 1} was dropped, it is not {kind}{(problem is null ? "" : $" ({problem})")}.");
            }
        }
        IO.AtomicFile.Write(path, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(text.ToString())));
        return kept;
    }
}
