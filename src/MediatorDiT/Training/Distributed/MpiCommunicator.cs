using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MediatorDiT.Training.Distributed;

/// <summary>
/// The ranks of an MPI job (mpiexec, or srun with PMI), through MPICH's library bound at run time
/// (<see cref="MpiLibrary"/>). Collectives are MPI's non-blocking ones, polled, so a dead peer turns into an
/// exception rather than a hang; bytes are only copied (allgather, broadcast), never summed by MPI, so results
/// do not depend on MPI's reduction order. A heartbeat thread runs a tiny collective every
/// <see cref="Options.HeartbeatInterval"/> on a duplicate of MPI_COMM_WORLD: when it does not complete within
/// <see cref="Options.RankTimeout"/> (a rank died or hangs, while the launcher did not end the job), or when the
/// launcher process went away, the run is declared failed (<see cref="Options.OnRankFailure"/>, else a
/// <see cref="RankFailureException"/> from the next collective).
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    /// <summary>How failures are detected and reported.</summary>
    public sealed record Options
    {
        /// <summary>How long a heartbeat round may take before the run is declared failed.</summary>
        public TimeSpan RankTimeout { get; init; } = TimeSpan.FromSeconds(30);
        /// <summary>Time between heartbeat rounds.</summary>
        public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(2);
        /// <summary>
        /// Called once, on the heartbeat thread, with the sentence saying what failed (e.g. to print it and end
        /// the process even while the main thread is in the middle of a step); null: the next collective throws.
        /// </summary>
        public Action<string>? OnRankFailure { get; init; }
    }

    private const int ChunkBytes = 1 << 28;

    private readonly MpiLibrary _mpi;
    private readonly Options _options;
    private readonly int _world, _heartbeatComm;
    private readonly Thread? _heartbeat;
    private readonly int _parentAtStart;
    private volatile string? _failure;
    private volatile bool _stopHeartbeat;
    private bool _disposed;

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size { get; }

    /// <inheritdoc/>
    public string Name { get; }

    private MpiCommunicator(MpiLibrary mpi, Options options)
    {
        _mpi = mpi;
        _options = options;
        if (mpi.Initialized()) throw new InvalidOperationException("MPI is already initialised in this process.");
        int provided = mpi.InitThread(MpiLibrary.ThreadMultiple);
        _world = mpi.CommDup(MpiLibrary.CommWorld);
        mpi.SetErrorsReturn(_world);
        Rank = mpi.CommRank(_world);
        Size = mpi.CommSize(_world);
        Name = $"MPI ({mpi.LibraryVersion()})";
        _parentAtStart = OperatingSystem.IsLinux() ? getppid() : 0;
        if (provided >= MpiLibrary.ThreadMultiple && Size > 1)
        {
            _heartbeatComm = mpi.CommDup(MpiLibrary.CommWorld);
            mpi.SetErrorsReturn(_heartbeatComm);
            _heartbeat = new Thread(Heartbeat) { IsBackground = true, Name = "mdit rank heartbeat" };
            _heartbeat.Start();
        }
    }

    /// <summary>Initialises MPI (once per process) and joins the job's ranks.</summary>
    /// <exception cref="MediatorDiTException">MPICH is not installed or MPI cannot start.</exception>
    public static MpiCommunicator Create(Options? options = null) => new(MpiLibrary.Load(), options ?? new Options());

    /// <inheritdoc/>
    public void AllGather<T>(ReadOnlySpan<T> local, Span<T> gathered) where T : unmanaged
    {
        if (gathered.Length != checked(local.Length * Size))
            throw new ArgumentException($"gathered holds {gathered.Length} values; {Size} ranks' blocks of {local.Length} need {local.Length * Size}.", nameof(gathered));
        var sendBytes = MemoryMarshal.AsBytes(local);
        var receiveBytes = MemoryMarshal.AsBytes(gathered);
        long block = sendBytes.Length;
        if (block <= ChunkBytes)
        {
            fixed (byte* s = sendBytes)
            fixed (byte* r = receiveBytes)
            {
                ThrowIfFailed();
                int request;
                _mpi.Check(_mpi.Iallgather(s, (int)block, r, _world, &request), "MPI_Iallgather");
                Poll(&request);
            }
            return;
        }
        // Large blocks in chunks (MPI counts are ints): gather chunk c of every rank, then place it.
        var chunk = new byte[ChunkBytes];
        var chunks = new byte[(long)ChunkBytes * Size];
        for (long offset = 0; offset < block; offset += ChunkBytes)
        {
            int n = (int)Math.Min(ChunkBytes, block - offset);
            sendBytes.Slice((int)offset, n).CopyTo(chunk);
            fixed (byte* s = chunk)
            fixed (byte* r = chunks)
            {
                ThrowIfFailed();
                int request;
                _mpi.Check(_mpi.Iallgather(s, n, r, _world, &request), "MPI_Iallgather");
                Poll(&request);
            }
            for (int rank = 0; rank < Size; rank++)
                chunks.AsSpan(rank * n, n).CopyTo(receiveBytes.Slice((int)(rank * block + offset), n));
        }
    }

    /// <inheritdoc/>
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, Size);
        var bytes = MemoryMarshal.AsBytes(data);
        for (int offset = 0; offset < bytes.Length || offset == 0; offset += ChunkBytes)
        {
            int n = Math.Min(ChunkBytes, bytes.Length - offset);
            fixed (byte* p = bytes.Slice(offset, n))
            {
                ThrowIfFailed();
                int request;
                _mpi.Check(_mpi.Ibcast(p, n, root, _world, &request), "MPI_Ibcast");
                Poll(&request);
            }
            if (bytes.Length == 0) break;
        }
    }

    /// <summary>
    /// The ordered sum passed along the ranks: rank 0 adds its blocks and sends the running sum to rank 1, which
    /// adds its own and sends it on, and so on; the last rank broadcasts the total. In chunks, so the ranks work
    /// on different chunks at once. Each rank receives at most two sums' worth of bytes, whatever the number of
    /// blocks.
    /// </summary>
    public long SumInOrder(ReadOnlySpan<float> localBlocks, int blockLength, Span<float> result)
    {
        if (Size == 1) return OrderedSum.ByGather(this, localBlocks, blockLength, result);
        if (blockLength < 1 || localBlocks.Length == 0 || localBlocks.Length % blockLength != 0 || result.Length != blockLength)
            throw new ArgumentException($"{localBlocks.Length} values are no whole number of blocks of {result.Length}.", nameof(localBlocks));
        const int ChunkFloats = 1 << 18, Tag = 0x6d64;
        int blocks = localBlocks.Length / blockLength, chunks = (blockLength + ChunkFloats - 1) / ChunkFloats;
        var sends = new int[chunks];
        long received = 0;
        ThrowIfFailed();
        fixed (float* sum = result)
        fixed (int* requests = sends)
        {
            for (int c = 0; c < chunks; c++)
            {
                int offset = c * ChunkFloats, n = Math.Min(ChunkFloats, blockLength - offset);
                var part = result.Slice(offset, n);
                if (Rank == 0)
                {
                    localBlocks.Slice(offset, n).CopyTo(part);
                }
                else
                {
                    int request;
                    _mpi.Check(_mpi.Irecv(sum + offset, n * sizeof(float), Rank - 1, Tag, _world, &request), "MPI_Irecv");
                    Poll(&request);
                    received += n * sizeof(float);
                }
                for (int b = Rank == 0 ? 1 : 0; b < blocks; b++) TensorAdd(part, localBlocks.Slice(b * blockLength + offset, n));
                if (Rank < Size - 1) _mpi.Check(_mpi.Isend(sum + offset, n * sizeof(float), Rank + 1, Tag, _world, requests + c), "MPI_Isend");
            }
            if (Rank < Size - 1)
                for (int c = 0; c < chunks; c++) Poll(requests + c);
        }
        Broadcast(result, Size - 1);
        if (Rank != Size - 1) received += (long)blockLength * sizeof(float);
        return received;

        static void TensorAdd(Span<float> sum, ReadOnlySpan<float> block) => System.Numerics.Tensors.TensorPrimitives.Add(sum, block, sum);
    }

    /// <summary>Polls a started non-blocking collective: spinning briefly, then yielding, then sleeping 1 ms between tests.</summary>
    private void Poll(int* request)
    {
        var clock = Stopwatch.StartNew();
        for (int polls = 0; ; polls++)
        {
            _mpi.Check(_mpi.Test(request, out bool done), "MPI_Test");
            if (done) return;
            ThrowIfFailed();
            if (clock.ElapsedMilliseconds < 2) Thread.SpinWait(20);
            else if (clock.ElapsedMilliseconds < 20) Thread.Yield();
            else Thread.Sleep(1);
        }
    }

    private void ThrowIfFailed()
    {
        if (_failure is not { } message) return;
        if (_options.OnRankFailure is null) throw new RankFailureException(message);
        // The failure callback ends the process; keep this thread from touching MPI meanwhile.
        Thread.Sleep(Timeout.Infinite);
    }

    private void Heartbeat()
    {
        try
        {
            while (true)
            {
                int flag = _stopHeartbeat ? 1 : 0, result = 0, request;
                int rc = _mpi.IallreduceMaxInt(&flag, &result, _heartbeatComm, &request);
                if (rc != MpiLibrary.Success)
                {
                    Fail($"the heartbeat between the ranks failed ({_mpi.ErrorString(rc).TrimEnd('.')}); a rank has probably ended, so rank {Rank} stops.");
                    return;
                }
                var clock = Stopwatch.StartNew();
                while (true)
                {
                    rc = _mpi.Test(&request, out bool done);
                    if (rc != MpiLibrary.Success)
                    {
                        Fail($"the heartbeat between the ranks failed ({_mpi.ErrorString(rc).TrimEnd('.')}); a rank has probably ended, so rank {Rank} stops.");
                        return;
                    }
                    if (done) break;
                    if (clock.Elapsed > _options.RankTimeout)
                    {
                        Fail($"a rank of the {Size} stopped answering for {_options.RankTimeout.TotalSeconds:F0} s (it ended or hangs); rank {Rank} stops without a checkpoint.");
                        return;
                    }
                    if (LauncherGone())
                    {
                        Fail($"the launcher of rank {Rank} ended; rank {Rank} stops without a checkpoint.");
                        return;
                    }
                    Thread.Sleep(20);
                }
                if (result != 0) return;
                var wait = Stopwatch.StartNew();
                while (wait.Elapsed < _options.HeartbeatInterval && !_stopHeartbeat) Thread.Sleep(20);
            }
        }
        catch (Exception e)
        {
            Fail($"the heartbeat between the ranks failed ({e.Message.TrimEnd('.')}); rank {Rank} stops.");
        }
    }

    private bool LauncherGone() => OperatingSystem.IsLinux() && _parentAtStart > 1 && getppid() != _parentAtStart;

    private void Fail(string message)
    {
        if (_failure is not null) return;
        _failure = message;
        _options.OnRankFailure?.Invoke(message);
    }

    /// <inheritdoc/>
    public void Abort(int exitCode)
    {
        _mpi.Abort(MpiLibrary.CommWorld, exitCode);
        Environment.Exit(exitCode);
    }

    /// <summary>
    /// Ends the heartbeat together with the other ranks (each rank calls this after the run's last collective)
    /// and finalises MPI; after a rank failure MPI is left as it is (finalising could wait for the dead rank).
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_failure is not null) return;
        if (_heartbeat is not null)
        {
            _stopHeartbeat = true;
            if (!_heartbeat.Join(_options.RankTimeout + _options.HeartbeatInterval + TimeSpan.FromSeconds(5))) return;
            if (_failure is not null) return;
        }
        _mpi.Finalize();
    }

    [DllImport("libc", SetLastError = false)]
    private static extern int getppid();
}
