using System.Xml.Linq;
using MediatorDiT.Evaluation;

namespace MediatorDiT.Tests.Evaluation;

public class SvgPlotTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Fact]
    public void TicksAreRoundNumbersInsideTheRange()
    {
        Assert.Equal([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], SvgPlot.Ticks(0, 1).Select(t => Math.Round(t, 12)));
        Assert.Equal([20.0, 40.0, 60.0], SvgPlot.Ticks(13, 71, target: 3));
    }

    [Fact]
    public void LineChartHasOneCurvePerSeriesAndEscapesText()
    {
        var svg = SvgPlot.LineChart("a <b> & c", "x", "y",
        [
            new PlotSeries("one", [(0, 1), (1, 2), (2, 1.5)]),
            new PlotSeries("two", [(0, 0), (2, double.NaN), (3, 3)], Line: false, Markers: true),
        ]);
        var doc = XDocument.Parse(svg);
        Assert.Single(doc.Descendants(Svg + "polyline"));
        Assert.Equal(2, doc.Descendants(Svg + "circle").Count()); // the NaN point is skipped
        Assert.Contains(doc.Descendants(Svg + "text"), t => t.Value == "a <b> & c");
    }

    [Fact]
    public void HeatMapColoursTheLowestAndHighestCellsAtTheEndsOfTheScale()
    {
        var values = new double[,] { { 1, 2, 3 }, { 4, 5, 6 } };
        var doc = XDocument.Parse(SvgPlot.HeatMap("h", "step", "layer", values, "S"));
        var fills = doc.Descendants(Svg + "rect").Skip(1).Take(6).Select(r => (string)r.Attribute("fill")!).ToArray();
        Assert.Equal(SvgPlot.Colour(0), fills[0]);
        Assert.Equal(SvgPlot.Colour(1), fills[5]);
        Assert.Equal(SvgPlot.Colour(0.4), fills[2]);
        Assert.Equal("#440154", SvgPlot.Colour(0));
        Assert.Equal("#fde725", SvgPlot.Colour(1));
    }
}
