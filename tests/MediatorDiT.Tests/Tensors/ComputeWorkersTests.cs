using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Tensors;

/// <summary>
/// Parallel regions run on the dedicated helper threads: every item runs exactly once, also when several
/// threads open regions at the same time (the helpers are then busy and the thread pool takes the rest),
/// with the helpers polling between regions, and an exception in a body reaches the caller.
/// </summary>
public class ComputeWorkersTests
{
    private static void RunRegions(int regions, int count, int[] hits)
    {
        for (int r = 0; r < regions; r++)
            ParallelChunks.Run(2, count, i => Interlocked.Increment(ref hits[r * count + i]));
    }

    [Fact]
    public void ConcurrentRegions_RunEveryItemOnce()
    {
        const int callers = 4, regions = 300, count = 7;
        var hits = Enumerable.Range(0, callers).Select(_ => new int[regions * count]).ToArray();
        var threads = Enumerable.Range(0, callers).Select(c => new Thread(() => RunRegions(regions, count, hits[c]))).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        foreach (var h in hits) Assert.All(h, v => Assert.Equal(1, v));
    }

    [Fact]
    public void PollingHelpers_RunEveryItemOnce()
    {
        int saved = ComputeWorkers.SpinMicroseconds;
        ComputeWorkers.SpinMicroseconds = 500;
        try
        {
            var hits = new int[200 * 5];
            RunRegions(200, 5, hits);
            // After a pause longer than the polling window the helpers sleep, and must still wake.
            Thread.Sleep(5);
            var later = new int[5];
            ParallelChunks.Run(2, 5, i => Interlocked.Increment(ref later[i]));
            Assert.All(hits, v => Assert.Equal(1, v));
            Assert.All(later, v => Assert.Equal(1, v));
        }
        finally { ComputeWorkers.SpinMicroseconds = saved; }
    }

    [Fact]
    public void ExceptionInABody_ReachesTheCaller()
    {
        var e = Assert.Throws<InvalidOperationException>(() =>
            ParallelChunks.Run(2, 16, i => { if (i == 11) throw new InvalidOperationException("item 11"); }));
        Assert.Equal("item 11", e.Message);
        // The helpers are still usable afterwards.
        var hits = new int[16];
        ParallelChunks.Run(2, 16, i => Interlocked.Increment(ref hits[i]));
        Assert.All(hits, v => Assert.Equal(1, v));
    }
}
