using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Tests.Training.Distributed;

/// <summary>The agreements the trainer builds on gather and broadcast.</summary>
public class CollectivesTests
{
    [Fact]
    public void AFailureOnOneRankStopsEveryRankAndIsStatedOnce()
    {
        var errors = ThreadRanks.Run(3, comm =>
        {
            try
            {
                comm.Agree(comm.Rank == 1 ? new MediatorDiTException("the data is missing on this machine.") : null, "opening the data");
                return null;
            }
            catch (Exception e) { return e; }
        });
        var root = Assert.IsType<RunStoppedException>(errors[0]);
        Assert.False(root.Quiet);
        Assert.Equal("rank 1 failed while opening the data (see its message); all ranks stopped.", root.Message);
        var failing = Assert.IsType<RunStoppedException>(errors[1]);
        Assert.False(failing.Quiet);
        Assert.Equal("the data is missing on this machine.", failing.Message);
        Assert.IsType<MediatorDiTException>(failing.InnerException);
        Assert.True(Assert.IsType<RunStoppedException>(errors[2]).Quiet);
    }

    [Fact]
    public void TheSameFailureOnEveryRankIsStatedByRankZeroAlone()
    {
        var errors = ThreadRanks.Run(2, comm =>
        {
            try
            {
                comm.Agree(new MediatorDiTException("unknown dataset 'x'."), "opening the data");
                return null;
            }
            catch (Exception e) { return e; }
        });
        Assert.False(Assert.IsType<RunStoppedException>(errors[0]).Quiet);
        Assert.True(Assert.IsType<RunStoppedException>(errors[1]).Quiet);
    }

    [Fact]
    public void OneProcessRethrowsItsOwnException()
    {
        var e = Assert.Throws<IOException>(() => SingleProcessCommunicator.Instance.Agree(new IOException("disk full"), "writing"));
        Assert.Equal("disk full", e.Message);
        SingleProcessCommunicator.Instance.Agree(null, "writing");
    }

    [Fact]
    public void AnyStringAndGatherReachEveryRank()
    {
        var results = ThreadRanks.Run(3, comm => (
            Any: comm.Any(comm.Rank == 2),
            None: comm.Any(false),
            Text: comm.BroadcastString(comm.Rank == 0 ? "rank 0's config ü" : null),
            Values: comm.GatherValue(10L * comm.Rank)));
        Assert.All(results, r =>
        {
            Assert.True(r.Any);
            Assert.False(r.None);
            Assert.Equal("rank 0's config ü", r.Text);
            Assert.Equal([0L, 10L, 20L], r.Values);
        });
    }

    [Fact]
    public void TheOrderedSumAddsLeftToRightOverRanksAndBlocks()
    {
        // Values whose float sum depends on the order: 1e8 + 1 - 1e8 is 0 left to right, 1 otherwise.
        float[][] blocks = [[1e8f, 3f], [1f, 1e-8f], [-1e8f, 2f], [0.5f, -5f]];
        var expected = new float[2];
        OrderedSum.Local(blocks.SelectMany(b => b).ToArray(), 2, expected);
        Assert.Equal(0.5f, expected[0]);
        var results = ThreadRanks.Run(2, comm =>
        {
            var result = new float[2];
            long bytes = comm.SumInOrder(blocks.Skip(2 * comm.Rank).Take(2).SelectMany(b => b).ToArray(), 2, result);
            Assert.Equal(2 * 2 * sizeof(float), bytes);
            return result;
        });
        Assert.All(results, r => Assert.Equal(expected, r));
    }
}
