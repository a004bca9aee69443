using System.Runtime.InteropServices;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Tests.Training.Distributed;

/// <summary>Ranks as threads of the test process: collectives meet at a barrier and copy through shared slots.</summary>
internal sealed class ThreadRanks(int size)
{
    private readonly Barrier _barrier = new(size);
    private readonly byte[][] _slots = new byte[size][];

    public ICommunicator Rank(int rank) => new Member(this, rank);

    /// <summary>Runs <paramref name="body"/> on every rank, each on its own thread; returns the results in rank order.</summary>
    public static T[] Run<T>(int size, Func<ICommunicator, T> body)
    {
        var ranks = new ThreadRanks(size);
        var results = new T[size];
        var errors = new Exception?[size];
        var threads = Enumerable.Range(0, size).Select(r => new Thread(() =>
        {
            try { results[r] = body(ranks.Rank(r)); }
            catch (Exception e) { errors[r] = e; }
        }, 16 << 20)).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromMinutes(3)), "a rank thread did not finish in 3 minutes");
        if (errors.FirstOrDefault(e => e is not null) is { } error) throw new AggregateException(errors.Where(e => e is not null)!);
        return results;
    }

    private void Meet()
    {
        if (!_barrier.SignalAndWait(TimeSpan.FromSeconds(60))) throw new RankFailureException("a thread rank did not reach the collective in 60 s.");
    }

    private sealed class Member(ThreadRanks group, int rank) : ICommunicator
    {
        public int Rank => rank;
        public int Size => group._slots.Length;
        public string Name => "test threads";

        public void AllGather<T>(ReadOnlySpan<T> local, Span<T> gathered) where T : unmanaged
        {
            Assert.Equal(local.Length * Size, gathered.Length);
            group._slots[rank] = MemoryMarshal.AsBytes(local).ToArray();
            group.Meet();
            var all = MemoryMarshal.AsBytes(gathered);
            int block = group._slots[rank].Length;
            for (int r = 0; r < Size; r++)
            {
                Assert.Equal(block, group._slots[r].Length);
                group._slots[r].CopyTo(all.Slice(r * block));
            }
            group.Meet();
        }

        public void Broadcast<T>(Span<T> data, int root) where T : unmanaged
        {
            if (rank == root) group._slots[root] = MemoryMarshal.AsBytes((ReadOnlySpan<T>)data).ToArray();
            group.Meet();
            if (rank != root) group._slots[root].CopyTo(MemoryMarshal.AsBytes(data));
            group.Meet();
        }

        public void Abort(int exitCode) => throw new InvalidOperationException("a thread rank cannot abort the test process.");

        public void Dispose() { }
    }
}
