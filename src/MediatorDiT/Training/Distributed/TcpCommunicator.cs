using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace MediatorDiT.Training.Distributed;

/// <summary>
/// Ranks joined over TCP, for launchers that set torchrun-style variables and no MPI (torchrun --no-python, a
/// Kubernetes Indexed Job, srun without PMI): rank 0 listens on the master port, the other ranks connect to it,
/// and every collective goes through rank 0 (a star: it gathers the blocks in rank order and sends them back).
/// Bytes are only copied, so results equal those of the other communicators. A peer that ends closes its
/// connection, which every waiting rank sees at once; a watcher thread notices it between collectives too, and
/// TCP keep-alive probes find a peer whose machine went away. A peer that hangs with its connection open (a
/// stopped process, a deadlock of the whole process) is found by a heartbeat: each rank and rank 0 also share a
/// second connection on which both send a byte every <see cref="Options.HeartbeatInterval"/> from a thread of
/// their own; silence for <see cref="Options.RankTimeout"/> ends the run. A rank busy with a long step keeps
/// beating, so only a rank that no longer runs at all is taken for hung.
/// </summary>
public sealed class TcpCommunicator : ICommunicator
{
    /// <summary>How the ranks meet and how failures are reported.</summary>
    public sealed record Options
    {
        /// <summary>How long rank 0 waits for all ranks to connect, and the others keep trying to reach it.</summary>
        public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromMinutes(5);
        /// <summary>
        /// Called once, on the watcher thread, with the sentence saying what failed (e.g. to print it and end the
        /// process while the main thread is in the middle of a step); null: the next collective throws.
        /// </summary>
        public Action<string>? OnRankFailure { get; init; }
        /// <summary>How long a peer's heartbeat may be silent before the run is declared failed.</summary>
        public TimeSpan RankTimeout { get; init; } = TimeSpan.FromSeconds(30);
        /// <summary>Time between heartbeat bytes (at most a quarter of <see cref="RankTimeout"/> is used).</summary>
        public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(2);
    }

    private const uint Magic = 0x5444444D; // "MDDT": a rank's data connection
    private const uint HeartbeatMagic = 0x4248444D; // "MDHB": its heartbeat connection
    private readonly Options _options;
    private readonly Socket?[] _peers; // rank 0: one per other rank; others: [0] is rank 0
    private readonly Socket?[] _beats; // the heartbeat connections, indexed like _peers
    private readonly Lock _busy = new();
    private readonly Thread? _watcher, _heartbeat;
    private volatile string? _failure;
    private volatile bool _closing, _stopBeats;

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size { get; }

    /// <inheritdoc/>
    public string Name => "TCP";

    private TcpCommunicator(int rank, int size, Socket?[] peers, Socket?[] beats, Options options)
    {
        (Rank, Size, _peers, _beats, _options) = (rank, size, peers, beats, options);
        if (size > 1)
        {
            _watcher = new Thread(Watch) { IsBackground = true, Name = "mdit rank watcher" };
            _watcher.Start();
            _heartbeat = new Thread(Beat) { IsBackground = true, Name = "mdit rank heartbeat" };
            _heartbeat.Start();
        }
    }

    /// <summary>Joins rank <paramref name="rank"/> of <paramref name="size"/> to the run whose rank 0 listens at <paramref name="host"/>:<paramref name="port"/>.</summary>
    /// <exception cref="MediatorDiTException">The ranks do not all meet within the connect timeout.</exception>
    public static TcpCommunicator Connect(int rank, int size, string host, int port, Options? options = null)
    {
        options ??= new Options();
        if (size < 1 || rank < 0 || rank >= size) throw new MediatorDiTException($"rank {rank} is not one of the {size} ranks.");
        var peers = new Socket?[size];
        var beats = new Socket?[size];
        if (size == 1) return new TcpCommunicator(rank, size, peers, beats, options);
        var deadline = Stopwatch.StartNew();
        if (rank == 0)
        {
            using var listener = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
            try
            {
                listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                listener.Bind(new IPEndPoint(IPAddress.IPv6Any, port));
                listener.Listen(size);
            }
            catch (SocketException e)
            {
                throw new MediatorDiTException($"rank 0 cannot listen on port {port} (MASTER_PORT): {e.Message.TrimEnd('.')}.");
            }
            // Every other rank connects twice: its data connection, then its heartbeat connection.
            int joined = 1, beating = 1;
            var hello = new byte[12];
            while (joined < size || beating < size)
            {
                var left = options.ConnectTimeout - deadline.Elapsed;
                if (left <= TimeSpan.Zero || !listener.Poll(left, SelectMode.SelectRead))
                    throw new MediatorDiTException(
                        $"only {joined} of {size} ranks reached rank 0 on port {port} within {options.ConnectTimeout.TotalSeconds:F0} s; check WORLD_SIZE, MASTER_ADDR and MASTER_PORT on every rank.");
                var s = listener.Accept();
                Configure(s);
                ReceiveExactly(s, hello, -1);
                uint magic = BinaryPrimitives.ReadUInt32LittleEndian(hello);
                int r = BinaryPrimitives.ReadInt32LittleEndian(hello[4..]), n = BinaryPrimitives.ReadInt32LittleEndian(hello[8..]);
                if (magic is not (Magic or HeartbeatMagic)) { s.Dispose(); continue; }
                if (n != size) throw new MediatorDiTException($"rank {r} says the run has {n} ranks, rank 0 says {size}; give every rank the same WORLD_SIZE.");
                var slots = magic == Magic ? peers : beats;
                if (r <= 0 || r >= size || slots[r] is not null) throw new MediatorDiTException($"two processes claim rank {r}; give every process its own RANK.");
                slots[r] = s;
                if (magic == Magic) joined++;
                else beating++;
            }
            foreach (var s in peers) s?.Send(BitConverter.GetBytes(Magic));
        }
        else
        {
            var s = Join(Magic);
            beats[0] = Join(HeartbeatMagic);
            Span<byte> ack = stackalloc byte[4];
            try
            {
                ReceiveExactly(s, ack, 0);
            }
            catch (RankFailureException)
            {
                throw new MediatorDiTException($"rank 0 at {host}:{port} closed the connection before all ranks joined; see its message.");
            }
            peers[0] = s;

            Socket Join(uint magic)
            {
                Socket? joined = null;
                Exception? last = null;
                while (joined is null)
                {
                    if (deadline.Elapsed > options.ConnectTimeout)
                        throw new MediatorDiTException(
                            $"rank {rank} could not reach rank 0 at {host}:{port} within {options.ConnectTimeout.TotalSeconds:F0} s ({last?.Message.TrimEnd('.') ?? "no answer"}); check MASTER_ADDR and MASTER_PORT.");
                    try
                    {
                        var c = new Socket(SocketType.Stream, ProtocolType.Tcp);
                        c.Connect(host, port);
                        joined = c;
                    }
                    catch (SocketException e)
                    {
                        last = e;
                        Thread.Sleep(200);
                    }
                }
                Configure(joined);
                var hello = new byte[12];
                BinaryPrimitives.WriteUInt32LittleEndian(hello, magic);
                BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(4), rank);
                BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(8), size);
                joined.Send(hello);
                return joined;
            }
        }
        return new TcpCommunicator(rank, size, peers, beats, options);
    }

    private static void Configure(Socket s)
    {
        s.NoDelay = true;
        s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        try
        {
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 10);
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 5);
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 4);
        }
        catch (SocketException)
        {
            // Keep-alive tuning is not available everywhere; the defaults still apply.
        }
    }

    /// <inheritdoc/>
    public void AllGather<T>(ReadOnlySpan<T> local, Span<T> gathered) where T : unmanaged
    {
        if (gathered.Length != checked(local.Length * Size))
            throw new ArgumentException($"gathered holds {gathered.Length} values; {Size} ranks' blocks of {local.Length} need {local.Length * Size}.", nameof(gathered));
        var send = MemoryMarshal.AsBytes(local);
        var all = MemoryMarshal.AsBytes(gathered);
        int block = send.Length;
        lock (_busy)
        {
            ThrowIfFailed();
            if (Size == 1)
            {
                send.CopyTo(all);
                return;
            }
            try
            {
                if (Rank == 0)
                {
                    send.CopyTo(all);
                    for (int r = 1; r < Size; r++) ReceiveExactly(_peers[r]!, all.Slice(r * block, block), r);
                    for (int r = 1; r < Size; r++) SendAll(_peers[r]!, all, r);
                }
                else
                {
                    SendAll(_peers[0]!, send, 0);
                    ReceiveExactly(_peers[0]!, all, 0);
                }
            }
            catch (RankFailureException e)
            {
                throw Explain(e);
            }
        }
    }

    /// <inheritdoc/>
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, Size);
        var bytes = MemoryMarshal.AsBytes(data);
        lock (_busy)
        {
            ThrowIfFailed();
            if (Size == 1) return;
            try
            {
                if (root != 0)
                {
                    if (Rank == root) SendAll(_peers[0]!, bytes, 0);
                    else if (Rank == 0) ReceiveExactly(_peers[root]!, bytes, root);
                }
                if (Rank == 0)
                {
                    for (int r = 1; r < Size; r++)
                        if (r != root) SendAll(_peers[r]!, bytes, r);
                }
                else if (Rank != root) ReceiveExactly(_peers[0]!, bytes, 0);
            }
            catch (RankFailureException e)
            {
                throw Explain(e);
            }
        }
    }

    /// <summary>
    /// A collective that failed because the heartbeat found a hung peer (and shut the connections to end the wait)
    /// reports the heartbeat's sentence, not a lost connection.
    /// </summary>
    private RankFailureException Explain(RankFailureException e) =>
        _failure is { } message && message != e.Message ? new RankFailureException(message) : e;

    private void ThrowIfFailed()
    {
        if (_failure is not { } message) return;
        if (_options.OnRankFailure is null) throw new RankFailureException(message);
        Thread.Sleep(Timeout.Infinite);
    }

    private void SendAll(Socket s, ReadOnlySpan<byte> bytes, int peer)
    {
        try
        {
            while (bytes.Length > 0) bytes = bytes[s.Send(bytes)..];
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            throw Lost(peer, e.Message);
        }
    }

    private static void ReceiveExactly(Socket s, Span<byte> bytes, int peer)
    {
        try
        {
            while (bytes.Length > 0)
            {
                int n = s.Receive(bytes);
                if (n == 0) throw new RankFailureException(PeerEnded(peer));
                bytes = bytes[n..];
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            throw new RankFailureException(PeerEnded(peer, e.Message));
        }
    }

    private RankFailureException Lost(int peer, string? detail = null)
    {
        var e = new RankFailureException(PeerEnded(peer, detail));
        _failure ??= e.Message;
        return e;
    }

    private static string PeerEnded(int peer, string? detail = null) => peer < 0
        ? "a rank closed its connection before the run began."
        : $"rank {peer} ended or lost its connection{(detail is null ? "" : $" ({detail.TrimEnd('.')})")}; this rank stops without a checkpoint.";

    /// <summary>Between collectives, watches for a peer whose connection closed (a rank that died).</summary>
    private void Watch()
    {
        while (!_closing && _failure is null)
        {
            Thread.Sleep(500);
            if (!_busy.TryEnter()) continue;
            try
            {
                if (_closing) return;
                for (int r = 0; r < _peers.Length; r++)
                {
                    var s = _peers[r];
                    if (s is null) continue;
                    bool closed;
                    try { closed = s.Poll(0, SelectMode.SelectRead) && s.Available == 0; }
                    catch (Exception e) when (e is SocketException or ObjectDisposedException) { closed = true; }
                    if (!closed) continue;
                    _failure = PeerEnded(r);
                    _options.OnRankFailure?.Invoke(_failure);
                    return;
                }
            }
            finally
            {
                _busy.Exit();
            }
        }
    }

    /// <summary>
    /// Sends a byte to every heartbeat peer each interval and reads theirs; a peer silent for the rank timeout ends
    /// the run. A heartbeat connection that closes is left to the watcher (the data connection closes with it).
    /// </summary>
    private void Beat()
    {
        var clock = Stopwatch.StartNew();
        var lastHeard = new TimeSpan[Size];
        byte[] beat = [1], sink = new byte[256];
        while (!_stopBeats && _failure is null)
        {
            for (int r = 0; r < Size && !_stopBeats; r++)
            {
                if (_beats[r] is not { } s) continue;
                try
                {
                    s.Send(beat);
                    while (s.Available > 0)
                    {
                        s.Receive(sink, Math.Min(s.Available, sink.Length), SocketFlags.None);
                        lastHeard[r] = clock.Elapsed;
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    continue;
                }
                if (clock.Elapsed - lastHeard[r] > _options.RankTimeout)
                {
                    Hung($"rank {r} stopped answering for {_options.RankTimeout.TotalSeconds:F0} s (it hangs, or its machine went away); rank {Rank} stops without a checkpoint.");
                    return;
                }
            }
            var wait = Stopwatch.StartNew();
            var interval = TimeSpan.FromTicks(Math.Min(_options.HeartbeatInterval.Ticks, _options.RankTimeout.Ticks / 4));
            while (wait.Elapsed < interval && !_stopBeats) Thread.Sleep(20);
        }
    }

    /// <summary>
    /// Reports a hung peer: through the callback where there is one, else by shutting the data connections, so a
    /// collective waiting on the hung peer ends and throws this sentence.
    /// </summary>
    private void Hung(string message)
    {
        if (_failure is not null) return;
        _failure = message;
        if (_options.OnRankFailure is { } report)
        {
            report(message);
            return;
        }
        foreach (var s in _peers)
        {
            try { s?.Shutdown(SocketShutdown.Both); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        }
    }

    /// <summary>Stops this rank's heartbeat and leaves every connection open, as a stopped process does.</summary>
    internal void StopAnswering() => _stopBeats = true;

    /// <inheritdoc/>
    public void Abort(int exitCode)
    {
        CloseConnections();
        Environment.Exit(exitCode);
    }

    /// <summary>Closes this rank's connections without the goodbye, as the OS does for a process that dies.</summary>
    internal void CloseConnections()
    {
        _closing = true;
        _stopBeats = true;
        foreach (var s in _peers) s?.Dispose();
        foreach (var s in _beats) s?.Dispose();
    }

    /// <summary>
    /// Waits until every rank got here (after the run's last collective), then closes the connections, so no
    /// rank mistakes another's normal end for a failure.
    /// </summary>
    public void Dispose()
    {
        if (_closing) return;
        // The watcher stops first: a peer that passes the last gather before this rank may close its end at once.
        _closing = true;
        if (_failure is null && Size > 1)
        {
            try
            {
                this.GatherValue((byte)1);
            }
            catch (RankFailureException)
            {
                // A peer already ended; nothing to wait for.
            }
        }
        // The heartbeat beats on through that last gather: a rank that gets there early must not look hung.
        _stopBeats = true;
        _heartbeat?.Join(_options.HeartbeatInterval + TimeSpan.FromSeconds(5));
        lock (_busy)
            foreach (var s in _peers) s?.Dispose();
        foreach (var s in _beats) s?.Dispose();
    }
}
