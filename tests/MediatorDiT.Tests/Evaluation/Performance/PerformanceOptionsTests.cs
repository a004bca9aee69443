using MediatorDiT.Evaluation.Performance;

namespace MediatorDiT.Tests.Evaluation.Performance;

/// <summary>The bench's rounds: 1 warm-up and 3 timed rounds when quick, 2 and 11 otherwise, or the timed rounds given.</summary>
public class PerformanceOptionsTests
{
    [Fact]
    public void TheTimedRounds_AreTheQuickOrFullCount_UnlessGiven()
    {
        Assert.Equal((1, 3), (new PerformanceOptions(1, Quick: true).WarmUps, new PerformanceOptions(1, Quick: true).Repeats));
        Assert.Equal((2, 11), (new PerformanceOptions(1).WarmUps, new PerformanceOptions(1).Repeats));
        var one = new PerformanceOptions(1, Quick: true) { Rounds = 1 };
        Assert.Equal((1, 1), (one.WarmUps, one.Repeats));
        Assert.Equal(5, (new PerformanceOptions(1) { Rounds = 5 }).Repeats);
        Assert.Equal(1, (one with { Quick = false }).Repeats); // kept by a copy, as the long pair's quick copy is made
        Assert.NotEqual(new PerformanceOptions(1, Quick: true), one);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new PerformanceOptions(1) { Rounds = 0 });
        Assert.Equal("value", e.ParamName);
    }
}
