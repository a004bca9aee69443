using System.Globalization;
using System.Text;
using MediatorDiT.IO;

namespace MediatorDiT.Evaluation;

/// <summary>One curve (or point set) of a <see cref="SvgPlot.LineChart"/>.</summary>
/// <param name="Name">Legend entry.</param>
/// <param name="Points">(x, y) in drawing order; non-finite points are skipped.</param>
/// <param name="Line">Join the points with a line.</param>
/// <param name="Markers">Draw a dot at every point (a scatter plot when <paramref name="Line"/> is false).</param>
public sealed record PlotSeries(string Name, IReadOnlyList<(double X, double Y)> Points, bool Line = true, bool Markers = false);

/// <summary>
/// Small hand-written SVG charts for reports: a line/scatter chart with axes, ticks, labels and a legend,
/// and a heat map with labelled axes and a colour scale. Returns the SVG text; <see cref="Write"/> stores it
/// atomically.
/// </summary>
public static class SvgPlot
{
    private const int Left = 70, Right = 150, Top = 40, Bottom = 55;

    private static readonly string[] Palette =
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    /// <summary>An SVG document of <paramref name="series"/> (lines and/or dots), with a legend and axes fitted to the finite points.</summary>
    /// <param name="title">The chart's title.</param>
    /// <param name="xLabel">The x axis label.</param>
    /// <param name="yLabel">The y axis label.</param>
    /// <param name="series">The lines; non-finite points are left out.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static string LineChart(string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series,
        int width = 760, int height = 440)
    {
        var finite = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToArray();
        var (x0, x1) = Range(finite.Select(p => p.X));
        var (y0, y1) = Range(finite.Select(p => p.Y));
        double plotW = width - Left - Right, plotH = height - Top - Bottom;
        double X(double v) => Left + (v - x0) / (x1 - x0) * plotW;
        double Y(double v) => Top + (y1 - v) / (y1 - y0) * plotH;

        var sb = Begin(width, height, title);
        Axes(sb, width, height, xLabel, yLabel);
        foreach (double tick in Ticks(x0, x1))
        {
            Append(sb, $"<line x1=\"{X(tick):F1}\" y1=\"{Top + plotH:F1}\" x2=\"{X(tick):F1}\" y2=\"{Top + plotH + 4:F1}\" stroke=\"black\"/>\n");
            Append(sb, $"<text x=\"{X(tick):F1}\" y=\"{Top + plotH + 16:F1}\" text-anchor=\"middle\">{Format(tick)}</text>\n");
        }
        foreach (double tick in Ticks(y0, y1))
        {
            Append(sb, $"<line x1=\"{Left - 4}\" y1=\"{Y(tick):F1}\" x2=\"{Left + plotW:F1}\" y2=\"{Y(tick):F1}\" stroke=\"#e6e6e6\"/>\n");
            Append(sb, $"<text x=\"{Left - 6}\" y=\"{Y(tick) + 4:F1}\" text-anchor=\"end\">{Format(tick)}</text>\n");
        }
        for (int i = 0; i < series.Count; i++)
        {
            // Up to ten series get distinct colours; more (e.g. one per layer) run along the colour scale.
            string colour = series.Count <= Palette.Length ? Palette[i] : Colour(i / (series.Count - 1.0));
            var points = series[i].Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToArray();
            if (series[i].Line && points.Length > 1)
            {
                Append(sb, $"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"");
                foreach (var p in points) Append(sb, $"{X(p.X):F1},{Y(p.Y):F1} ");
                sb.Append("\"/>\n");
            }
            if (series[i].Markers || points.Length == 1)
                foreach (var p in points)
                    Append(sb, $"<circle cx=\"{X(p.X):F1}\" cy=\"{Y(p.Y):F1}\" r=\"3\" fill=\"{colour}\"/>\n");
            double ly = Top + 8 + Math.Min(16, (plotH - 8) / Math.Max(1, series.Count - 1)) * i;
            Append(sb, $"<line x1=\"{width - Right + 12}\" y1=\"{ly:F1}\" x2=\"{width - Right + 32}\" y2=\"{ly:F1}\" stroke=\"{colour}\" stroke-width=\"2\"/>\n");
            Append(sb, $"<text x=\"{width - Right + 36}\" y=\"{ly + 4:F1}\">{Escape(series[i].Name)}</text>\n");
        }
        return End(sb);
    }

    /// <summary>
    /// values[row, column] as coloured cells, row 0 at the top; labels are optional (indices otherwise, at
    /// most about ten shown per axis); the colour bar on the right maps the value range.
    /// </summary>
    public static string HeatMap(string title, string xLabel, string yLabel, double[,] values, string colourLabel,
        IReadOnlyList<string>? rowLabels = null, IReadOnlyList<string>? columnLabels = null, int width = 760, int height = 440)
    {
        int rows = values.GetLength(0), cols = values.GetLength(1);
        var all = new List<double>();
        foreach (double v in values) if (double.IsFinite(v)) all.Add(v);
        var (v0, v1) = Range(all);
        double plotW = width - Left - Right, plotH = height - Top - Bottom;
        double cellW = plotW / Math.Max(cols, 1), cellH = plotH / Math.Max(rows, 1);

        var sb = Begin(width, height, title);
        for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
        {
            double v = values[r, c];
            string fill = double.IsFinite(v) ? Colour((v - v0) / (v1 - v0)) : "#ffffff";
            // Cells overlap by a fraction of a pixel so no background seams show between them.
            Append(sb, $"<rect x=\"{Left + c * cellW:F2}\" y=\"{Top + r * cellH:F2}\" width=\"{cellW + 0.3:F2}\" height=\"{cellH + 0.3:F2}\" fill=\"{fill}\"/>\n");
        }
        Axes(sb, width, height, xLabel, yLabel);
        foreach (int c in LabelIndices(cols))
        {
            double x = Left + (c + 0.5) * cellW;
            Append(sb, $"<text x=\"{x:F1}\" y=\"{Top + plotH + 16:F1}\" text-anchor=\"middle\">{Escape(columnLabels?[c] ?? c.ToString(CultureInfo.InvariantCulture))}</text>\n");
        }
        foreach (int r in LabelIndices(rows))
        {
            double y = Top + (r + 0.5) * cellH;
            Append(sb, $"<text x=\"{Left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{Escape(rowLabels?[r] ?? r.ToString(CultureInfo.InvariantCulture))}</text>\n");
        }
        // Colour bar: 50 bands from the top (maximum) to the bottom (minimum), with ticks.
        double barX = width - Right + 30, barW = 16;
        const int bands = 50;
        for (int i = 0; i < bands; i++)
            Append(sb, $"<rect x=\"{barX:F1}\" y=\"{Top + i * plotH / bands:F2}\" width=\"{barW}\" height=\"{plotH / bands + 0.3:F2}\" fill=\"{Colour(1 - (i + 0.5) / bands)}\"/>\n");
        Append(sb, $"<rect x=\"{barX:F1}\" y=\"{Top}\" width=\"{barW}\" height=\"{plotH:F1}\" fill=\"none\" stroke=\"black\"/>\n");
        foreach (double tick in Ticks(v0, v1))
        {
            double y = Top + (v1 - tick) / (v1 - v0) * plotH;
            Append(sb, $"<line x1=\"{barX + barW:F1}\" y1=\"{y:F1}\" x2=\"{barX + barW + 4:F1}\" y2=\"{y:F1}\" stroke=\"black\"/>\n");
            Append(sb, $"<text x=\"{barX + barW + 6:F1}\" y=\"{y + 4:F1}\">{Format(tick)}</text>\n");
        }
        Append(sb, $"<text transform=\"translate({width - 8},{Top + plotH / 2:F1}) rotate(-90)\" text-anchor=\"middle\">{Escape(colourLabel)}</text>\n");
        return End(sb);
    }

    /// <summary>Writes an SVG text atomically (temp file + rename).</summary>
    public static void Write(string path, string svg) =>
        AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(svg)));

    /// <summary>Perceptually ordered colours (dark blue, teal, green, yellow) for f in [0, 1].</summary>
    public static string Colour(double f)
    {
        ReadOnlySpan<(double R, double G, double B)> stops =
            [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)];
        f = double.IsFinite(f) ? Math.Clamp(f, 0, 1) : 0;
        double pos = f * (stops.Length - 1);
        int i = Math.Min((int)pos, stops.Length - 2);
        double w = pos - i;
        int R = (int)Math.Round(stops[i].R + w * (stops[i + 1].R - stops[i].R));
        int G = (int)Math.Round(stops[i].G + w * (stops[i + 1].G - stops[i].G));
        int B = (int)Math.Round(stops[i].B + w * (stops[i + 1].B - stops[i].B));
        return $"#{R:x2}{G:x2}{B:x2}";
    }

    /// <summary>"Nice" tick values (1, 2, 5 x 10^k steps) inside [lo, hi].</summary>
    public static IReadOnlyList<double> Ticks(double lo, double hi, int target = 6)
    {
        double span = hi - lo;
        if (!(span > 0) || !double.IsFinite(span)) return [lo];
        double raw = span / target, magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1.0, 2.0, 5.0, 10.0 }.Select(m => m * magnitude).First(s => s >= raw);
        var ticks = new List<double>();
        for (double v = Math.Ceiling(lo / step) * step; v <= hi + step * 1e-9; v += step)
            ticks.Add(Math.Abs(v) < step * 1e-9 ? 0 : v);
        return ticks;
    }

    private static (double Lo, double Hi) Range(IEnumerable<double> values)
    {
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
        foreach (double v in values)
        {
            if (!double.IsFinite(v)) continue;
            lo = Math.Min(lo, v);
            hi = Math.Max(hi, v);
        }
        if (lo > hi) return (0, 1);
        if (hi - lo < 1e-12 * Math.Max(1, Math.Abs(hi))) return (lo - 0.5, hi + 0.5);
        return (lo, hi);
    }

    private static IEnumerable<int> LabelIndices(int count)
    {
        int every = Math.Max(1, (int)Math.Ceiling(count / 10.0));
        for (int i = 0; i < count; i += every) yield return i;
    }

    private static StringBuilder Begin(int width, int height, string title)
    {
        var sb = new StringBuilder();
        Append(sb, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        Append(sb, $"<text x=\"{(width - Right + Left) / 2}\" y=\"{Top - 14}\" text-anchor=\"middle\" font-size=\"13\">{Escape(title)}</text>\n");
        return sb;
    }

    private static void Axes(StringBuilder sb, int width, int height, string xLabel, string yLabel)
    {
        int x1 = width - Right, y1 = height - Bottom;
        Append(sb, $"<line x1=\"{Left}\" y1=\"{y1}\" x2=\"{x1}\" y2=\"{y1}\" stroke=\"black\"/>\n");
        Append(sb, $"<line x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{y1}\" stroke=\"black\"/>\n");
        Append(sb, $"<text x=\"{(Left + x1) / 2}\" y=\"{height - 14}\" text-anchor=\"middle\">{Escape(xLabel)}</text>\n");
        Append(sb, $"<text transform=\"translate(16,{(Top + y1) / 2}) rotate(-90)\" text-anchor=\"middle\">{Escape(yLabel)}</text>\n");
    }

    private static string End(StringBuilder sb) => sb.Append("</svg>\n").ToString();

    private static void Append(StringBuilder sb, FormattableString text) => sb.Append(text.ToString(CultureInfo.InvariantCulture));

    private static string Format(double v) => v.ToString("G4", CultureInfo.InvariantCulture);

    private static string Escape(string s) =>
        s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
