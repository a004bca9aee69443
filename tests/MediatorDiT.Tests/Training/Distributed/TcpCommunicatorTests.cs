using System.Net;
using System.Net.Sockets;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Tests.Training.Distributed;

/// <summary>Ranks joined over loopback TCP, as torchrun-style variables join them.</summary>
public class TcpCommunicatorTests
{
    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static TcpCommunicator[] Join(int size, int port, TcpCommunicator.Options? options = null)
    {
        var tasks = Enumerable.Range(0, size).Select(r => Task.Run(() => TcpCommunicator.Connect(r, size, "127.0.0.1", port, options))).ToArray();
        Assert.True(Task.WaitAll(tasks, TimeSpan.FromSeconds(60)), "the ranks did not meet in 60 s");
        return tasks.Select(t => t.Result).ToArray();
    }

    [Fact]
    public void GatherAndBroadcastGiveEveryRankTheSameBytes()
    {
        var ranks = Join(3, FreePort());
        var results = ranks.AsParallel().WithDegreeOfParallelism(3).Select(comm =>
        {
            var gathered = new float[3 * 5000];
            comm.AllGather<float>(Enumerable.Range(0, 5000).Select(i => comm.Rank * 10000f + i).ToArray(), gathered);
            var data = comm.Rank == 1 ? new double[] { 1.5, 2.5 } : new double[2];
            comm.Broadcast<double>(data, root: 1);
            var fromZero = comm.Rank == 0 ? new long[] { 7, 8, 9 } : new long[3];
            comm.Broadcast<long>(fromZero, root: 0);
            comm.Dispose();
            return (gathered, data, fromZero);
        }).ToArray();
        foreach (var (gathered, data, fromZero) in results)
        {
            for (int r = 0; r < 3; r++)
                for (int i = 0; i < 5000; i++) Assert.Equal(r * 10000f + i, gathered[r * 5000 + i]);
            Assert.Equal([1.5, 2.5], data);
            Assert.Equal([7L, 8L, 9L], fromZero);
        }
    }

    [Fact]
    public void ARankThatEndsIsReportedAtOnceWithOneSentence()
    {
        string? reported = null;
        using var seen = new ManualResetEventSlim();
        var ranks = Join(2, FreePort(), new TcpCommunicator.Options { OnRankFailure = m => { reported = m; seen.Set(); } });
        // Rank 1 goes away without a word (as a killed process does: the OS closes its socket).
        ranks[1].CloseConnections();
        Assert.True(seen.Wait(TimeSpan.FromSeconds(10)), "rank 0 did not notice in 10 s");
        Assert.Equal("rank 1 ended or lost its connection; this rank stops without a checkpoint.", reported);
    }

    [Fact]
    public void WithoutACallbackTheNextCollectiveThrows()
    {
        var ranks = Join(2, FreePort());
        ranks[1].CloseConnections();
        var e = Assert.Throws<RankFailureException>(() => ranks[0].GatherValue(1));
        Assert.StartsWith("rank 1 ended or lost its connection", e.Message);
    }

    [Fact]
    public void ARankThatStopsAnsweringIsFoundByTheHeartbeat()
    {
        string? reported = null;
        using var seen = new ManualResetEventSlim();
        var clock = new System.Diagnostics.Stopwatch();
        var ranks = Join(3, FreePort(), new TcpCommunicator.Options
        {
            RankTimeout = TimeSpan.FromSeconds(1), HeartbeatInterval = TimeSpan.FromMilliseconds(100),
            OnRankFailure = m => { reported ??= m; seen.Set(); },
        });
        // Rank 2 stops as a SIGSTOPped process does: its connections stay open, nothing more comes from it.
        ranks[2].StopAnswering();
        clock.Start();
        Assert.True(seen.Wait(TimeSpan.FromSeconds(10)), "no rank noticed in 10 s");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.9), $"reported after {clock.Elapsed.TotalSeconds:F2} s, before the timeout");
        Assert.Equal("rank 2 stopped answering for 1 s (it hangs, or its machine went away); rank 0 stops without a checkpoint.", reported);
        foreach (var r in ranks) r.CloseConnections();
    }

    [Fact]
    public void WithoutACallbackTheWaitingCollectiveThrowsTheHeartbeatsSentence()
    {
        var ranks = Join(2, FreePort(), new TcpCommunicator.Options { RankTimeout = TimeSpan.FromSeconds(1), HeartbeatInterval = TimeSpan.FromMilliseconds(100) });
        ranks[1].StopAnswering();
        // Rank 0 waits for rank 1's block, which never comes; the heartbeat ends the wait.
        var e = Assert.Throws<RankFailureException>(() => ranks[0].GatherValue(1));
        Assert.Equal("rank 1 stopped answering for 1 s (it hangs, or its machine went away); rank 0 stops without a checkpoint.", e.Message);
        foreach (var r in ranks) r.CloseConnections();
    }

    [Fact]
    public void ARankBusyForLongerThanTheTimeoutIsNotTakenForHung()
    {
        string? reported = null;
        var ranks = Join(2, FreePort(), new TcpCommunicator.Options
        {
            RankTimeout = TimeSpan.FromSeconds(1), HeartbeatInterval = TimeSpan.FromMilliseconds(100), OnRankFailure = m => reported = m,
        });
        // Rank 1 computes for 3 timeouts before it joins the gather; its heartbeat thread keeps beating meanwhile.
        var gathered = ranks.AsParallel().WithDegreeOfParallelism(2).Select(comm =>
        {
            if (comm.Rank == 1) Thread.Sleep(3000);
            var all = new int[2];
            comm.AllGather<int>([comm.Rank + 10], all);
            comm.Dispose();
            return all;
        }).ToArray();
        Assert.Null(reported);
        Assert.All(gathered, g => Assert.Equal([10, 11], g));
    }

    [Fact]
    public void RanksThatNeverArriveAreNamed()
    {
        var e = Assert.Throws<MediatorDiTException>(() =>
            TcpCommunicator.Connect(0, 3, "127.0.0.1", FreePort(), new TcpCommunicator.Options { ConnectTimeout = TimeSpan.FromSeconds(1) }));
        Assert.StartsWith("only 1 of 3 ranks reached rank 0 on port ", e.Message);
    }
}
