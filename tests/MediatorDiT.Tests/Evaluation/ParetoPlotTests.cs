using System.Globalization;
using System.Xml.Linq;
using MediatorDiT.Evaluation;

namespace MediatorDiT.Tests.Evaluation;

public class ParetoPlotTests
{
    private static ThresholdSearchResult Result()
    {
        var grid = ThresholdGrid.For(3);
        (double, double)[] points = [(1, 5), (2, 3), (2.5, 4), (3, 1), (3.5, double.NaN)];
        var pairs = points.Select((p, i) => new PairResult(grid[i], p.Item1, p.Item2, [1.5, double.NaN], [1.0, 0.0])).ToArray();
        return new ThresholdSearchResult(pairs, ParetoFrontier.Of(pairs.Select(p => p.GflopsPerImage).ToArray(), pairs.Select(p => p.Score).ToArray()),
            "reference-rms", 4, 8, 10, 40);
    }

    [Fact]
    public void SvgHasEveryScoredPairTheFrontierLineAxesAndTheChosenPoint()
    {
        var result = Result();
        var chosen = new ChosenSchedule(result.Pairs[1].Pair, 2, 3, false, 2.2);
        var svg = XDocument.Parse(ParetoPlot.Render(result, chosen));
        XNamespace ns = "http://www.w3.org/2000/svg";
        var circles = svg.Descendants(ns + "circle").ToArray();
        Assert.Equal(4, circles.Count(c => (string?)c.Attribute("class") == "pair")); // the NaN score is left out
        Assert.Equal(3, circles.Count(c => (string?)c.Attribute("class") == "frontier-point"));
        var polyline = svg.Descendants(ns + "polyline").Single();
        var vertices = ((string)polyline.Attribute("points")!).Split(' ')
            .Select(v => v.Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        Assert.Equal(3, vertices.Length);
        // Ascending cost goes right; descending score goes down the page, so y grows (SVG y points down).
        Assert.True(vertices[0][0] < vertices[1][0] && vertices[1][0] < vertices[2][0]);
        Assert.True(vertices[0][1] < vertices[1][1] && vertices[1][1] < vertices[2][1]);
        var chosenCircle = circles.Single(c => (string?)c.Attribute("class") == "chosen");
        var pairCircle = circles.First(c => (string?)c.Attribute("class") == "pair" && c.Value.Contains("ratios 0.1,0.1:"));
        Assert.Equal((string?)pairCircle.Attribute("cx"), (string?)chosenCircle.Attribute("cx"));
        Assert.Equal((string?)pairCircle.Attribute("cy"), (string?)chosenCircle.Attribute("cy"));
        var texts = svg.Descendants(ns + "text").Select(t => t.Value).ToArray();
        Assert.Contains("mean GFLOPs per image", texts);
        Assert.Contains("reference-rms score (lower is better)", texts);
        Assert.Contains(texts, t => t.StartsWith("chosen 0.1,0.1, budget 2.2"));
        Assert.Contains("largest model alone", texts);
    }

    [Fact]
    public void WithoutAChoiceNothingIsHighlighted()
    {
        var svg = XDocument.Parse(ParetoPlot.Render(Result(), null));
        Assert.DoesNotContain(svg.Descendants().Attributes("class"), a => a.Value.StartsWith("chosen"));
    }

    [Fact]
    public void CsvHasOneRowPerPairWithEmptyCellsForMissingValues()
    {
        var result = Result();
        var refined = new ThresholdRefinement([new RefinedPair(3, result.Pairs[3].Pair, 3, 1, 3.25, 0.5)], "frechet-pool2", 16,
            new FrontierAgreement(double.NaN, [], [], []), 0, 0);
        var lines = ThresholdReport.PairsCsv(result, refined).TrimEnd('\n').Split('\n');
        Assert.Equal("ratio1,ratio2,gflops_per_image,proxy_score,refined_score,refined_gflops_per_image,"
                     + "mean_switch_step_1,switched_fraction_1,mean_switch_step_2,switched_fraction_2,on_frontier", lines[0]);
        Assert.Equal(1 + result.Pairs.Count, lines.Length);
        Assert.Equal("0.1,0,1,5,,,1.5,1,,0,1", lines[1]);
        Assert.Equal("0.2,0.1,3,1,0.5,3.25,1.5,1,,0,1", lines[4]);
        Assert.Equal("0.1,0.1,2,3,,,1.5,1,,0,1", lines[2]);
        Assert.EndsWith(",0", lines[3]);
    }
}
