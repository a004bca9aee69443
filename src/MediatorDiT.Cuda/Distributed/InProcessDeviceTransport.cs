using System.Collections.Concurrent;
using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Cuda.Distributed;

/// <summary>
/// <see cref="IDeviceTransport"/> between ranks that are threads of one process, each with an accelerator of its own
/// (ILGPU's CPU accelerator in tests): a send waits for the rank's queued launches, copies the buffer to the host and
/// posts it to the receiver's mailbox for this sender; a receive takes the next one and uploads it. Sends never wait
/// for the receiver, so any schedule the NCCL ranks can run, these can. The transfers' stream is a stream of its own
/// on the accelerator, ordered with the default stream by waiting on the host.
/// </summary>
public sealed class InProcessDeviceTransport : IDeviceTransport
{
    private readonly Group _group;
    private readonly Accelerator _accelerator;

    private InProcessDeviceTransport(Group group, int rank, Accelerator accelerator) =>
        (_group, Rank, _accelerator, Stream) = (group, rank, accelerator, accelerator.CreateStream());

    /// <inheritdoc/>
    public AcceleratorStream Stream { get; }

    /// <inheritdoc/>
    public void WaitForCompute() => _accelerator.DefaultStream.Synchronize();

    /// <inheritdoc/>
    public void ComputeWaitsForTransfers() => Stream.Synchronize();

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size => _group.Size;

    /// <inheritdoc/>
    public string Name => "in-process device transfers";

    /// <summary>The ranks of one run: create it once, then <see cref="Join"/> from every rank's thread.</summary>
    public sealed class Group
    {
        // Mailbox [from, to]: the buffers rank from sent to rank to, in the order sent.
        private readonly BlockingCollection<float[]>[,] _boxes;

        /// <summary>A group of <paramref name="size"/> ranks whose receives give up after <paramref name="timeout"/> (default 60 s).</summary>
        public Group(int size, TimeSpan? timeout = null)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
            Size = size;
            Timeout = timeout ?? TimeSpan.FromSeconds(60);
            _boxes = new BlockingCollection<float[]>[size, size];
            for (int i = 0; i < size; i++)
                for (int j = 0; j < size; j++) _boxes[i, j] = [];
        }

        /// <summary>The number of ranks.</summary>
        public int Size { get; }

        /// <summary>How long a receive waits before the sender counts as failed.</summary>
        public TimeSpan Timeout { get; }

        /// <summary>Rank <paramref name="rank"/>'s transport, transferring from and to <paramref name="accelerator"/>'s buffers.</summary>
        public IDeviceTransport Join(int rank, Accelerator accelerator)
        {
            ArgumentNullException.ThrowIfNull(accelerator);
            if ((uint)rank >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is outside the group's {Size} ranks.");
            return new InProcessDeviceTransport(this, rank, accelerator);
        }

        internal BlockingCollection<float[]> Box(int from, int to) => _boxes[from, to];
    }

    /// <inheritdoc/>
    public void Send(ArrayView<float> data, int peer)
    {
        CheckPeer(peer);
        _group.Box(Rank, peer).Add(Download(data));
    }

    /// <inheritdoc/>
    public void Receive(ArrayView<float> data, int peer)
    {
        CheckPeer(peer);
        if (!_group.Box(peer, Rank).TryTake(out var values, _group.Timeout))
            throw new RankFailureException($"rank {peer} sent rank {Rank} nothing in {_group.Timeout.TotalSeconds:F0} s.");
        if (values.Length != data.Length)
            throw new MediatorDiTException($"rank {peer} sent {values.Length} floats where rank {Rank} receives {data.Length}; the ranks' schedules disagree.");
        if (values.Length > 0) data.CopyFromCPU(Stream, values);
    }

    /// <inheritdoc/>
    public void Broadcast(ArrayView<float> data, int root)
    {
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), $"root {root} is outside the {Size} ranks.");
        if (Rank != root)
        {
            Receive(data, root);
            return;
        }
        var values = Download(data);
        for (int r = 0; r < Size; r++)
            if (r != root) _group.Box(root, r).Add(values);
    }

    private float[] Download(ArrayView<float> data)
    {
        Stream.Synchronize();
        var values = new float[data.Length];
        if (values.Length > 0) data.CopyToCPU(Stream, values);
        return values;
    }

    private void CheckPeer(int peer)
    {
        if ((uint)peer >= (uint)Size || peer == Rank)
            throw new ArgumentOutOfRangeException(nameof(peer), $"peer {peer} is not another of the {Size} ranks (this is rank {Rank}).");
    }

    /// <summary>Frees the transfers' stream (the mailboxes belong to the group).</summary>
    public void Dispose() => Stream.Dispose();
}
