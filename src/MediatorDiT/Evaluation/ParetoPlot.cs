using System.Globalization;
using System.Text;
using MediatorDiT.IO;

namespace MediatorDiT.Evaluation;

/// <summary>
/// A hand-written SVG scatter plot of a threshold search: every pair as a point (GFLOPs per image against
/// score), the Pareto frontier as a line through its points, axis ticks and labels, the chosen schedule
/// ringed and labelled, and a dashed line at the largest model's cost alone. Self-contained (no fonts or
/// scripts); each point carries a tooltip with its ratios.
/// </summary>
public static class ParetoPlot
{
    private const double Width = 720, Height = 480, Left = 84, Right = 24, Top = 44, Bottom = 64;

    /// <summary>Renders <paramref name="result"/>; <paramref name="chosen"/>, if given, is highlighted.</summary>
    public static string Render(ThresholdSearchResult result, ChosenSchedule? chosen)
    {
        ArgumentNullException.ThrowIfNull(result);
        var points = result.Pairs.Where(p => !double.IsNaN(p.Score) && !double.IsNaN(p.GflopsPerImage)).ToArray();
        double[] xs = [.. points.Select(p => p.GflopsPerImage), result.LargestModelGflopsPerImage];
        double[] ys = points.Length > 0 ? points.Select(p => p.Score).ToArray() : [0, 1];
        var (x0, x1) = Range(xs);
        var (y0, y1) = Range(ys);
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double X(double v) => Left + (v - x0) / (x1 - x0) * plotW;
        double Y(double v) => Top + plotH - (v - y0) / (y1 - y0) * plotH;

        var svg = new StringBuilder();
        void Line(string text) => svg.Append(text).Append('\n');
        Line($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(Width)}\" height=\"{F(Height)}\" viewBox=\"0 0 {F(Width)} {F(Height)}\" font-family=\"sans-serif\" font-size=\"12\">");
        Line($"<rect x=\"0\" y=\"0\" width=\"{F(Width)}\" height=\"{F(Height)}\" fill=\"white\"/>");
        Line($"<text class=\"title\" x=\"{F(Width / 2)}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">Switch-ratio search: {result.Pairs.Count} pairs, {result.Samples} samples, {Escape(result.ScorerName)}</text>");

        // Axes with ticks at 1, 2 or 5 times a power of ten.
        Line($"<line class=\"axis\" x1=\"{F(Left)}\" y1=\"{F(Top + plotH)}\" x2=\"{F(Left + plotW)}\" y2=\"{F(Top + plotH)}\" stroke=\"black\"/>");
        Line($"<line class=\"axis\" x1=\"{F(Left)}\" y1=\"{F(Top)}\" x2=\"{F(Left)}\" y2=\"{F(Top + plotH)}\" stroke=\"black\"/>");
        foreach (double t in Ticks(x0, x1))
        {
            Line($"<line class=\"tick\" x1=\"{F(X(t))}\" y1=\"{F(Top + plotH)}\" x2=\"{F(X(t))}\" y2=\"{F(Top + plotH + 5)}\" stroke=\"black\"/>");
            Line($"<text class=\"tick-label\" x=\"{F(X(t))}\" y=\"{F(Top + plotH + 18)}\" text-anchor=\"middle\">{G(t)}</text>");
        }
        foreach (double t in Ticks(y0, y1))
        {
            Line($"<line class=\"tick\" x1=\"{F(Left - 5)}\" y1=\"{F(Y(t))}\" x2=\"{F(Left)}\" y2=\"{F(Y(t))}\" stroke=\"black\"/>");
            Line($"<text class=\"tick-label\" x=\"{F(Left - 8)}\" y=\"{F(Y(t) + 4)}\" text-anchor=\"end\">{G(t)}</text>");
        }
        Line($"<text class=\"axis-label\" x=\"{F(Left + plotW / 2)}\" y=\"{F(Height - 18)}\" text-anchor=\"middle\">mean GFLOPs per image</text>");
        Line($"<text class=\"axis-label\" x=\"18\" y=\"{F(Top + plotH / 2)}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {F(Top + plotH / 2)})\">{Escape(result.ScorerName)} score (lower is better)</text>");

        double bx = X(result.LargestModelGflopsPerImage);
        Line($"<line class=\"baseline\" x1=\"{F(bx)}\" y1=\"{F(Top)}\" x2=\"{F(bx)}\" y2=\"{F(Top + plotH)}\" stroke=\"gray\" stroke-dasharray=\"4 4\"/>");
        Line($"<text class=\"baseline-label\" x=\"{F(bx - 4)}\" y=\"{F(Top + 12)}\" text-anchor=\"end\" fill=\"gray\">largest model alone</text>");

        foreach (var p in points)
            Line($"<circle class=\"pair\" cx=\"{F(X(p.GflopsPerImage))}\" cy=\"{F(Y(p.Score))}\" r=\"3\" fill=\"#4a7fb5\" fill-opacity=\"0.6\"><title>ratios {p.Pair}: {G(p.GflopsPerImage)} GFLOPs, score {G(p.Score)}</title></circle>");
        var frontier = result.Frontier.Select(i => result.Pairs[i]).ToArray();
        if (frontier.Length > 0)
        {
            Line($"<polyline class=\"frontier\" points=\"{string.Join(" ", frontier.Select(p => $"{F(X(p.GflopsPerImage))},{F(Y(p.Score))}"))}\" fill=\"none\" stroke=\"#d9534f\" stroke-width=\"1.5\"/>");
            foreach (var p in frontier)
                Line($"<circle class=\"frontier-point\" cx=\"{F(X(p.GflopsPerImage))}\" cy=\"{F(Y(p.Score))}\" r=\"3.5\" fill=\"#d9534f\"><title>frontier: ratios {p.Pair}</title></circle>");
        }
        if (chosen is not null && result.Pairs.FirstOrDefault(p => p.Pair.Index == chosen.Pair.Index) is { } c && !double.IsNaN(c.Score))
        {
            double cx = X(c.GflopsPerImage), cy = Y(c.Score);
            string budget = chosen.BudgetGflops is double b ? $", budget {G(b)} GFLOPs" : "";
            Line($"<circle class=\"chosen\" cx=\"{F(cx)}\" cy=\"{F(cy)}\" r=\"8\" fill=\"none\" stroke=\"#2e8b57\" stroke-width=\"2.5\"/>");
            Line($"<text class=\"chosen-label\" x=\"{F(cx + 10)}\" y=\"{F(cy - 10)}\" fill=\"#2e8b57\">chosen {chosen.Pair}{budget}</text>");
        }
        Line("</svg>");
        return svg.ToString();
    }

    /// <summary>Writes <see cref="Render"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, ThresholdSearchResult result, ChosenSchedule? chosen)
    {
        var bytes = Encoding.UTF8.GetBytes(Render(result, chosen));
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>The data range with 5% padding; a single value gets a unit-sized window around it.</summary>
    private static (double Low, double High) Range(IReadOnlyList<double> values)
    {
        double lo = values.Min(), hi = values.Max();
        if (hi - lo <= 1e-12 * Math.Max(Math.Abs(lo), Math.Abs(hi)))
        {
            double pad = Math.Abs(lo) > 0 ? Math.Abs(lo) * 0.1 : 1;
            return (lo - pad, hi + pad);
        }
        double margin = 0.05 * (hi - lo);
        return (lo - margin, hi + margin);
    }

    private static IEnumerable<double> Ticks(double lo, double hi)
    {
        double raw = (hi - lo) / 5, magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw))), step;
        double f = raw / magnitude;
        step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * magnitude;
        for (double t = Math.Ceiling(lo / step) * step; t <= hi + step * 1e-9; t += step)
            yield return Math.Abs(t) < step * 1e-9 ? 0 : t;
    }

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    private static string G(double v) => v.ToString("G4", CultureInfo.InvariantCulture);

    private static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
