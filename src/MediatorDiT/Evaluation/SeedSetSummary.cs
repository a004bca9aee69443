using System.Globalization;
using System.Text.Json;

namespace MediatorDiT.Evaluation;

/// <summary>A metric over a configuration's seed sets: the mean and the sample standard deviation (n - 1; NaN for one set).</summary>
public sealed record MetricSpread(double Mean, double StandardDeviation, int Count)
{
    /// <summary>The spread of <paramref name="values"/>.</summary>
    public static MetricSpread Of(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return new MetricSpread(double.NaN, double.NaN, 0);
        double mean = values.Average();
        double std = values.Count < 2 ? double.NaN : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        return new MetricSpread(mean, std, values.Count);
    }

    /// <summary>"mean ± std" with <paramref name="decimals"/> decimals ("mean" alone for one set); <paramref name="signed"/>: "+" on positive means.</summary>
    public string Format(int decimals, bool signed = false)
    {
        string f = "F" + decimals.ToString(CultureInfo.InvariantCulture);
        if (Count == 0) return "";
        string mean = (signed && Mean > 0 ? "+" : "") + Mean.ToString(f, CultureInfo.InvariantCulture);
        return double.IsNaN(StandardDeviation) ? mean : $"{mean} ± {StandardDeviation.ToString(f, CultureInfo.InvariantCulture)}";
    }
}

/// <summary>One seed set of a configuration: what `mdit sample` recorded (run.json) and what `mdit eval --json` scored (eval.json).</summary>
/// <param name="Folder">The seed set's folder, e.g. results/fashion-mnist/samples/full/seed-1.</param>
/// <param name="Images">Images sampled.</param>
/// <param name="Steps">Sampling steps (0 where run.json does not say).</param>
/// <param name="MeanGflopsPerImage">Mean GFLOPs per image over all network calls.</param>
/// <param name="MeanSwitchSteps">For a ladder of m models, the mean over the images of the first step served by model k or a larger one, k = 1..m-1 (the step count where the image never got there).</param>
/// <param name="Quality">The metrics.</param>
public sealed record SeedSetResult(string Folder, int Images, int Steps, double MeanGflopsPerImage, IReadOnlyList<double> MeanSwitchSteps, QualityReport Quality);

/// <summary>A configuration (one sampling set-up) over its seed sets.</summary>
public sealed record ConfigurationSummary(string Name, IReadOnlyList<SeedSetResult> SeedSets)
{
    /// <summary>Images over all seed sets.</summary>
    public int Images => SeedSets.Sum(s => s.Images);

    /// <summary>Mean GFLOPs per image over all images.</summary>
    public double MeanGflopsPerImage => SeedSets.Sum(s => s.MeanGflopsPerImage * s.Images) / Math.Max(1, Images);

    /// <summary>Mean switch steps over all images (empty for one model).</summary>
    public IReadOnlyList<double> MeanSwitchSteps => SeedSets.Count == 0 ? [] :
        Enumerable.Range(0, SeedSets[0].MeanSwitchSteps.Count)
            .Select(k => SeedSets.Sum(s => s.MeanSwitchSteps[k] * s.Images) / Math.Max(1, Images)).ToArray();

    /// <summary>FID over the seed sets.</summary>
    public MetricSpread Fid => Spread(q => q.Fid);

    /// <summary>Precision over the seed sets.</summary>
    public MetricSpread Precision => Spread(q => q.Precision);

    /// <summary>Recall over the seed sets.</summary>
    public MetricSpread Recall => Spread(q => q.Recall);

    /// <summary>The Inception-Score analogue over the seed sets.</summary>
    public MetricSpread InceptionScore => Spread(q => q.InceptionScore);

    /// <summary>Class agreement over the seed sets (those that have labels).</summary>
    public MetricSpread ClassAgreement => Spread(q => q.ClassAgreement ?? double.NaN);

    /// <summary>The curve this configuration belongs to: the part of its name before '@' (null without one).</summary>
    public string? Curve => Name.Contains('@') ? Name[..Name.IndexOf('@')] : null;

    /// <summary>Its point on that curve: the part of its name after '@' (null without one).</summary>
    public string? Point => Name.Contains('@') ? Name[(Name.IndexOf('@') + 1)..] : null;

    private MetricSpread Spread(Func<QualityReport, double> metric)
    {
        var values = SeedSets.Select(s => metric(s.Quality)).Where(double.IsFinite).ToArray();
        return MetricSpread.Of(values);
    }
}

/// <summary>
/// Summarises repeated evaluations: a results folder holds one folder per configuration, each with one
/// <c>seed-&lt;S&gt;</c> folder per seed set holding `mdit sample`'s run.json and `mdit eval --json`'s eval.json.
/// Each metric is reported as mean and standard deviation over the seed sets, so that two configurations can be
/// compared against the seed-to-seed spread.
/// </summary>
public static class SeedSetSummary
{
    /// <summary>Every configuration under <paramref name="root"/> (alphabetical), or those named in <paramref name="only"/>, in that order.</summary>
    public static IReadOnlyList<ConfigurationSummary> Load(string root, IReadOnlyList<string>? only = null)
    {
        if (!Directory.Exists(root)) throw new MediatorDiTException($"the results folder '{root}' does not exist.");
        var names = only is { Count: > 0 } ? only :
            Directory.GetDirectories(root).Where(d => SeedFolders(d).Length > 0).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        if (names.Count == 0) throw new MediatorDiTException($"the results folder '{root}' has no configuration folder with seed-<S> folders in it.");
        return names.Select(n => LoadConfiguration(root, n!)).ToArray();
    }

    private static string[] SeedFolders(string dir) =>
        Directory.GetDirectories(dir, "seed-*").Order(StringComparer.Ordinal).ToArray();

    private static ConfigurationSummary LoadConfiguration(string root, string name)
    {
        string dir = Path.Combine(root, name);
        if (!Directory.Exists(dir)) throw new MediatorDiTException($"the configuration '{name}' has no folder {dir}.");
        var seeds = SeedFolders(dir);
        if (seeds.Length == 0) throw new MediatorDiTException($"{dir} has no seed-<S> folder.");
        return new ConfigurationSummary(name, seeds.Select(LoadSeedSet).ToArray());
    }

    /// <summary>One seed set's run.json and eval.json.</summary>
    public static SeedSetResult LoadSeedSet(string folder)
    {
        string runPath = Path.Combine(folder, "run.json"), evalPath = Path.Combine(folder, "eval.json");
        if (!File.Exists(runPath)) throw new MediatorDiTException($"{folder} has no run.json (written by mdit sample).");
        if (!File.Exists(evalPath)) throw new MediatorDiTException($"{folder} has no eval.json (written by mdit eval --json).");
        using var run = Parse(runPath);
        using var eval = Parse(evalPath);
        var r = run.RootElement;
        int images = Int(r, "images", runPath);
        int steps = r.TryGetProperty("steps", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt32() : 0;
        double gflops = Number(r, "mean_gflops_per_image", runPath);
        var switches = SwitchSteps(r, steps, runPath);
        if (!eval.RootElement.TryGetProperty("result", out var q) || q.ValueKind != JsonValueKind.Object)
            throw new MediatorDiTException($"{evalPath} has no \"result\" object: expected the output of mdit eval --json with --samples.");
        var quality = new QualityReport
        {
            Fid = Number(q, "Fid", evalPath),
            Precision = Number(q, "Precision", evalPath),
            Recall = Number(q, "Recall", evalPath),
            InceptionScore = Number(q, "InceptionScore", evalPath),
            ClassAgreement = q.TryGetProperty("ClassAgreement", out var a) && a.ValueKind == JsonValueKind.Number ? a.GetDouble() : null,
            Count = Int(q, "Count", evalPath),
            Reference = q.TryGetProperty("Reference", out var re) ? re.GetString() ?? "" : "",
            K = q.TryGetProperty("K", out var k) && k.ValueKind == JsonValueKind.Number ? k.GetInt32() : 0,
        };
        if (quality.Count != images)
            throw new MediatorDiTException($"{evalPath} scored {quality.Count} images but {runPath} sampled {images}: the two files are not of the same run.");
        return new SeedSetResult(folder, images, steps, gflops, switches, quality);
    }

    /// <summary>
    /// Mean over the images of the first step served by model k or a larger one (k = 1..m-1); an image that
    /// never got there counts the step count. (A fixed schedule switching at these steps, rounded, costs the same
    /// FLOPs as the run.)
    /// </summary>
    private static double[] SwitchSteps(JsonElement run, int steps, string path)
    {
        if (!run.TryGetProperty("samples", out var samples) || samples.ValueKind != JsonValueKind.Array) return [];
        int models = 0;
        var firsts = new List<int[]>();
        foreach (var sample in samples.EnumerateArray())
        {
            if (!sample.TryGetProperty("first_step_of_model", out var f) || f.ValueKind != JsonValueKind.Array)
                throw new MediatorDiTException($"{path}: a sample has no first_step_of_model array.");
            var first = f.EnumerateArray().Select(e => e.GetInt32()).ToArray();
            models = Math.Max(models, first.Length);
            firsts.Add(first);
        }
        if (models < 2 || firsts.Count == 0) return [];
        var mean = new double[models - 1];
        foreach (var first in firsts)
            for (int k = 1; k < models; k++)
            {
                int step = steps;
                for (int j = k; j < first.Length; j++)
                    if (first[j] >= 0) step = Math.Min(step, first[j]);
                mean[k - 1] += step;
            }
        for (int k = 0; k < mean.Length; k++) mean[k] /= firsts.Count;
        return mean;
    }

    private static JsonDocument Parse(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new MediatorDiTException($"{path} is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})."); }
    }

    private static double Number(JsonElement e, string key, string path) =>
        e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble()
            : throw new MediatorDiTException($"{path} has no number \"{key}\".");

    private static int Int(JsonElement e, string key, string path) =>
        e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i
            : throw new MediatorDiTException($"{path} has no integer \"{key}\".");

    /// <summary>
    /// <paramref name="a"/> minus <paramref name="b"/>, seed set by seed set (sets matched by folder name, seed-&lt;S&gt;):
    /// two configurations sampled from the same seed share their initial noise and labels, so the paired difference
    /// varies far less than either configuration between seed sets. Null where they share no seed set.
    /// </summary>
    public static MetricSpread? PairedDifference(ConfigurationSummary a, ConfigurationSummary b, Func<QualityReport, double> metric) =>
        CombinedDifference(a, [(b, 1)], metric);

    /// <summary>
    /// <paramref name="c"/> minus the straight line from <paramref name="from"/> to <paramref name="to"/> at c's GFLOPs
    /// per image, seed set by seed set: c - ((1 - w) from + w to), w = (G_c - G_from) / (G_to - G_from). What a
    /// configuration gains over the counts it lies between at the same FLOPs (a static count's frontier). Null where
    /// the three share no seed set.
    /// </summary>
    public static MetricSpread? LineDifference(ConfigurationSummary c, ConfigurationSummary from, ConfigurationSummary to, Func<QualityReport, double> metric)
    {
        double w = LineWeight(c, from, to);
        return CombinedDifference(c, [(from, 1 - w), (to, w)], metric);
    }

    /// <summary>The weight of <paramref name="to"/> on the line from <paramref name="from"/> at c's GFLOPs per image.</summary>
    public static double LineWeight(ConfigurationSummary c, ConfigurationSummary from, ConfigurationSummary to)
    {
        double span = to.MeanGflopsPerImage - from.MeanGflopsPerImage;
        if (!(Math.Abs(span) > 0))
            throw new MediatorDiTException($"the line from '{from.Name}' to '{to.Name}' needs two different costs; both sample at {from.MeanGflopsPerImage:F3} GFLOPs per image.");
        return (c.MeanGflopsPerImage - from.MeanGflopsPerImage) / span;
    }

    /// <summary>
    /// The configurations whose GFLOPs per image lie strictly between <paramref name="from"/>'s and <paramref name="to"/>'s,
    /// in <paramref name="configurations"/>' order: those the line between them is a reference for.
    /// </summary>
    public static IReadOnlyList<ConfigurationSummary> Between(IReadOnlyList<ConfigurationSummary> configurations, ConfigurationSummary from, ConfigurationSummary to)
    {
        double lo = Math.Min(from.MeanGflopsPerImage, to.MeanGflopsPerImage), hi = Math.Max(from.MeanGflopsPerImage, to.MeanGflopsPerImage);
        return configurations.Where(c => c != from && c != to && c.MeanGflopsPerImage > lo && c.MeanGflopsPerImage < hi).ToArray();
    }

    /// <summary>a minus the weighted sum of <paramref name="terms"/>, over the seed sets all of them share.</summary>
    private static MetricSpread? CombinedDifference(ConfigurationSummary a, IReadOnlyList<(ConfigurationSummary C, double Weight)> terms, Func<QualityReport, double> metric)
    {
        var bySeed = terms.Select(t => t.C.SeedSets.ToDictionary(s => Path.GetFileName(s.Folder), s => s.Quality)).ToArray();
        var differences = a.SeedSets
            .Select(s => (Seed: Path.GetFileName(s.Folder), s.Quality))
            .Where(s => bySeed.All(d => d.ContainsKey(s.Seed)))
            .Select(s => metric(s.Quality) - terms.Select((t, i) => t.Weight * metric(bySeed[i][s.Seed])).Sum())
            .Where(double.IsFinite).ToArray();
        return differences.Length == 0 ? null : MetricSpread.Of(differences);
    }

    /// <summary>
    /// The pairs of curve <paramref name="curveA"/> and curve <paramref name="curveB"/> with the same point name
    /// (e.g. dynamic@0.9-0.6 and fixed@0.9-0.6), in <paramref name="configurations"/>' order.
    /// </summary>
    public static IReadOnlyList<(ConfigurationSummary A, ConfigurationSummary B)> CurvePairs(
        IReadOnlyList<ConfigurationSummary> configurations, string curveA, string curveB)
    {
        var b = configurations.Where(c => c.Curve == curveB).ToDictionary(c => c.Point!);
        var pairs = configurations.Where(c => c.Curve == curveA && b.ContainsKey(c.Point!)).Select(c => (c, b[c.Point!])).ToArray();
        if (pairs.Length == 0)
            throw new MediatorDiTException($"no point of curve '{curveA}' has a point of the same name on curve '{curveB}' (configurations named {curveA}@P and {curveB}@P).");
        return pairs;
    }

    /// <summary>
    /// A Markdown table of paired differences, first minus second of each pair, seed set by seed set: GFLOPs of
    /// both, then FID, precision, recall, IS and class agreement differences as mean ± standard deviation.
    /// </summary>
    public static string PairedTable(IReadOnlyList<(ConfigurationSummary A, ConfigurationSummary B)> pairs) =>
        DifferenceTable("against", "GFLOPs / image (both)", pairs.Select(p => new DifferenceRow(p.A, p.B.Name,
            string.Create(CultureInfo.InvariantCulture, $"{p.A.MeanGflopsPerImage:F3}, {p.B.MeanGflopsPerImage:F3}"),
            metric => PairedDifference(p.A, p.B, metric))).ToArray());

    /// <summary>
    /// A Markdown table of each configuration between <paramref name="from"/> and <paramref name="to"/> (<see cref="Between"/>)
    /// minus the straight line between them at its GFLOPs (<see cref="LineDifference"/>), seed set by seed set; the
    /// line's column names both ends and the weight of the second.
    /// </summary>
    public static string LineTable(IReadOnlyList<ConfigurationSummary> configurations, ConfigurationSummary from, ConfigurationSummary to)
    {
        var rows = Between(configurations, from, to);
        if (rows.Count == 0)
            throw new MediatorDiTException($"no configuration samples at a cost between '{from.Name}' ({from.MeanGflopsPerImage:F3} GFLOPs per image) and '{to.Name}' ({to.MeanGflopsPerImage:F3}).");
        return DifferenceTable("against the line (weight of the second end)", "GFLOPs / image", rows.Select(c => new DifferenceRow(c,
            string.Create(CultureInfo.InvariantCulture, $"{from.Name} to {to.Name} at {LineWeight(c, from, to):F2}"),
            string.Create(CultureInfo.InvariantCulture, $"{c.MeanGflopsPerImage:F3}"),
            metric => LineDifference(c, from, to, metric))).ToArray());
    }

    /// <summary>One row of a difference table: the configuration, what it is compared with, the GFLOPs shown, and the difference of a metric.</summary>
    private sealed record DifferenceRow(ConfigurationSummary A, string Against, string Gflops, Func<Func<QualityReport, double>, MetricSpread?> Difference);

    private static string DifferenceTable(string againstHeader, string gflopsHeader, IReadOnlyList<DifferenceRow> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"| configuration | {againstHeader} | paired seed sets | {gflopsHeader} | FID difference | precision difference | recall difference | IS difference | class agreement difference |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            string D(Func<QualityReport, double> metric, int decimals) => row.Difference(metric)?.Format(decimals, signed: true) ?? "";
            var fid = row.Difference(q => q.Fid);
            sb.AppendLine(string.Create(inv,
                $"| {row.A.Name} | {row.Against} | {fid?.Count ?? 0} | {row.Gflops} | {fid?.Format(2, signed: true) ?? ""} | {D(q => q.Precision, 3)} | {D(q => q.Recall, 3)} | {D(q => q.InceptionScore, 2)} | {D(q => q.ClassAgreement ?? double.NaN, 3)} |"));
        }
        return sb.ToString();
    }

    /// <summary>
    /// A Markdown table: configuration, seed sets x images, GFLOPs per image, mean switch steps, then FID,
    /// precision, recall, IS and class agreement as mean ± standard deviation over the seed sets.
    /// </summary>
    public static string MarkdownTable(IReadOnlyList<ConfigurationSummary> configurations)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("| configuration | seed sets x images | GFLOPs / image | switch steps (mean) | FID | precision | recall | IS | class agreement |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var c in configurations)
        {
            var sizes = c.SeedSets.Select(s => s.Images).Distinct().ToArray();
            string size = sizes.Length == 1 ? $"{c.SeedSets.Count} x {sizes[0]}" : $"{c.SeedSets.Count} sets, {c.Images}";
            string switches = string.Join(", ", c.MeanSwitchSteps.Select(v => v.ToString("F1", inv)));
            sb.AppendLine(string.Create(inv,
                $"| {c.Name} | {size} | {c.MeanGflopsPerImage:F3} | {switches} | {c.Fid.Format(2)} | {c.Precision.Format(3)} | {c.Recall.Format(3)} | {c.InceptionScore.Format(2)} | {c.ClassAgreement.Format(3)} |"));
        }
        return sb.ToString();
    }

    /// <summary>
    /// FID against GFLOPs per image: one line per curve (configurations named curve@point, sorted by GFLOPs),
    /// single configurations as dots.
    /// </summary>
    public static string FidPlot(IReadOnlyList<ConfigurationSummary> configurations, string title)
    {
        var series = new List<PlotSeries>();
        foreach (var curve in configurations.Where(c => c.Curve is not null).GroupBy(c => c.Curve!))
            series.Add(new PlotSeries(curve.Key, curve.Select(c => (c.MeanGflopsPerImage, c.Fid.Mean)).OrderBy(p => p.Item1).ToArray(), Line: true, Markers: true));
        foreach (var single in configurations.Where(c => c.Curve is null))
            series.Add(new PlotSeries(single.Name, [(single.MeanGflopsPerImage, single.Fid.Mean)], Line: false, Markers: true));
        return SvgPlot.LineChart(title, "GFLOPs per image", "FID (mean over seed sets)", series);
    }

    /// <summary>The summaries as JSON (means, standard deviations and the seed sets' folders).</summary>
    public static string Json(IReadOnlyList<ConfigurationSummary> configurations)
    {
        object Spread(MetricSpread m) => new { mean = Finite(m.Mean), std = Finite(m.StandardDeviation), n = m.Count };
        var doc = configurations.Select(c => new
        {
            name = c.Name,
            curve = c.Curve,
            seed_sets = c.SeedSets.Select(s => s.Folder),
            images = c.Images,
            mean_gflops_per_image = c.MeanGflopsPerImage,
            mean_switch_steps = c.MeanSwitchSteps,
            fid = Spread(c.Fid),
            precision = Spread(c.Precision),
            recall = Spread(c.Recall),
            inception_score = Spread(c.InceptionScore),
            class_agreement = Spread(c.ClassAgreement),
        });
        return JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Writes a table, plot or JSON text atomically (temp file + rename).</summary>
    public static void WriteFile(string path, string text) =>
        IO.AtomicFile.Write(path, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(text)));

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;
}
