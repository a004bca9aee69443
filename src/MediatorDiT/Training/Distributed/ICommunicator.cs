namespace MediatorDiT.Training.Distributed;

/// <summary>
/// The ranks of a data-parallel run and the few collectives the trainer needs. Every rank calls the same
/// collectives in the same order; a collective returns the same bytes on every rank. Implementations: this
/// process alone (<see cref="SingleProcessCommunicator"/>), MPI processes (<see cref="MpiCommunicator"/>) and
/// processes joined over TCP by torchrun-style variables (<see cref="TcpCommunicator"/>); a GPU backend's
/// collective library plugs in here too. A collective on a run whose peer has died or stopped answering throws
/// <see cref="RankFailureException"/> instead of waiting for ever.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's rank, 0 to <see cref="Size"/> - 1; rank 0 writes the run folder.</summary>
    int Rank { get; }

    /// <summary>The number of ranks.</summary>
    int Size { get; }

    /// <summary>What joins the ranks, in words, for logs (e.g. "MPI (MPICH 4.0.2)").</summary>
    string Name { get; }

    /// <summary>
    /// Every rank's <paramref name="local"/> block, in rank order, into <paramref name="gathered"/> (which holds
    /// <see cref="Size"/> blocks of <paramref name="local"/>'s length). The bytes are copied, never combined, so
    /// the result does not depend on the transport.
    /// </summary>
    void AllGather<T>(ReadOnlySpan<T> local, Span<T> gathered) where T : unmanaged;

    /// <summary>Rank <paramref name="root"/>'s <paramref name="data"/> into every rank's (same length on all ranks).</summary>
    void Broadcast<T>(Span<T> data, int root) where T : unmanaged;

    /// <summary>
    /// The sum of every rank's blocks (<paramref name="localBlocks"/>: this rank's blocks of
    /// <paramref name="blockLength"/> values each, the same count on every rank), added element by element
    /// strictly left to right in (rank, block) order, as one process adding all blocks in that order would, into
    /// <paramref name="result"/> on every rank. Returns the bytes this rank received. The default gathers every
    /// block to every rank (<see cref="AllGather{T}"/>) and adds them there; a communicator with point-to-point
    /// transfers passes the running sum along the ranks instead.
    /// </summary>
    long SumInOrder(ReadOnlySpan<float> localBlocks, int blockLength, Span<float> result) =>
        OrderedSum.ByGather(this, localBlocks, blockLength, result);

    /// <summary>
    /// Ends every rank of the run at once after a failure that only this rank saw (the launcher tears the job
    /// down); does not return.
    /// </summary>
    void Abort(int exitCode);
}

/// <summary>A peer rank died or stopped answering (or its launcher ended); the run cannot go on.</summary>
public sealed class RankFailureException(string message) : MediatorDiTException(message);

/// <summary>
/// Every rank of the run stops at the same point, agreed through a collective (a rank's failure while preparing
/// the run, weights that disagree, a failed checkpoint write). <see cref="Quiet"/>: another rank states the
/// reason, so this one need not repeat it.
/// </summary>
public sealed class RunStoppedException : MediatorDiTException
{
    /// <summary>All ranks stop with <paramref name="message"/>; <paramref name="quiet"/> when another rank states it.</summary>
    public RunStoppedException(string message, bool quiet) : base(message) => Quiet = quiet;

    /// <summary>This rank's own failure (<paramref name="inner"/>), which the other ranks were told of.</summary>
    public RunStoppedException(Exception inner) : base(inner.Message, inner) => Quiet = false;

    /// <summary>The reason is reported by another rank (rank 0 or the rank that failed).</summary>
    public bool Quiet { get; }
}
