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
/// TCP keep-alive probes find a peer whose machine went away.
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
    }

    private const uint Magic = 0x5444444D; // "MDDT"
    private readonly Options _options;
    private readonly Socket?[] _peers; // rank 0: one per other rank; others: [0] is rank 0
    private readonly Lock _busy = new();
    private readonly Thread? _watcher;
    private volatile string? _failure;
    private volatile bool _closing;

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size { get; }

    /// <inheritdoc/>
    public string Name => "TCP";

    private TcpCommunicator(int rank, int size, Socket?[] peers, Options options)
    {
        (Rank, Size, _peers, _options) = (rank, size, peers, options);
        if (size > 1)
        {
            _watcher = new Thread(Watch) { IsBackground = true, Name = "mdit rank watcher" };
            _watcher.Start();
        }
    }

    /// <summary>Joins rank <paramref name="rank"/> of <paramref name="size"/> to the run whose rank 0 listens at <paramref name="host"/>:<paramref name="port"/>.</summary>
    /// <exception cref="MediatorDiTException">The ranks do not all meet within the connect timeout.</exception>
    public static TcpCommunicator Connect(int rank, int size, string host, int port, Options? options = null)
    {
        options ??= new Options();
        if (size < 1 || rank < 0 || rank >= size) throw new MediatorDiTException($"rank {rank} is not one of the {size} ranks.");
        var peers = new Socket?[size];
        if (size == 1) return new TcpCommunicator(rank, size, peers, options);
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
            int joined = 1;
            var hello = new byte[12];
            while (joined < size)
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
                if (magic != Magic) { s.Dispose(); continue; }
                if (n != size) throw new MediatorDiTException($"rank {r} says the run has {n} ranks, rank 0 says {size}; give every rank the same WORLD_SIZE.");
                if (r <= 0 || r >= size || peers[r] is not null) throw new MediatorDiTException($"two processes claim rank {r}; give every process its own RANK.");
                peers[r] = s;
                joined++;
            }
            foreach (var s in peers) s?.Send(BitConverter.GetBytes(Magic));
        }
        else
        {
            Socket? s = null;
            Exception? last = null;
            while (s is null)
            {
                if (deadline.Elapsed > options.ConnectTimeout)
                    throw new MediatorDiTException(
                        $"rank {rank} could not reach rank 0 at {host}:{port} within {options.ConnectTimeout.TotalSeconds:F0} s ({last?.Message.TrimEnd('.') ?? "no answer"}); check MASTER_ADDR and MASTER_PORT.");
                try
                {
                    var c = new Socket(SocketType.Stream, ProtocolType.Tcp);
                    c.Connect(host, port);
                    s = c;
                }
                catch (SocketException e)
                {
                    last = e;
                    Thread.Sleep(200);
                }
            }
            Configure(s);
            var hello = new byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(hello, Magic);
            BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(4), rank);
            BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(8), size);
            s.Send(hello);
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
        }
        return new TcpCommunicator(rank, size, peers, options);
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
    }

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
        foreach (var s in _peers) s?.Dispose();
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
        lock (_busy)
            foreach (var s in _peers) s?.Dispose();
    }
}
