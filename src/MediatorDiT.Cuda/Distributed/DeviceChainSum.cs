using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.Cuda.Distributed;

/// <summary>
/// The ordered sum of every rank's part gradients on the devices, bucket by bucket: the additions one process makes
/// (part 0 + part 1 + ... in (rank, part) order, element by element left to right), so the result is bit for bit
/// <c>OrderedSum</c>'s whatever the number of ranks. The running sum of a bucket is passed along the ranks: rank 0
/// adds its parts, sends the bucket to rank 1, which receives it, adds its own parts (a device kernel, the one the
/// single process uses) and sends it on; the last rank holds the total and broadcasts it at <see cref="Finish"/>.
/// Buckets are released one at a time as their gradients become final (<see cref="Release"/>), so while a later
/// bucket is still being computed an earlier one is already on its way along the chain; every rank must release
/// the same buckets in the same order. With one rank nothing is transferred. The receives, additions and sends run on
/// the transport's stream, each bucket after the launches queued on the default stream before its release (its
/// gradients), so the chain runs beside the rest of the backward; <see cref="Finish"/> makes the default stream wait
/// for the totals.
/// </summary>
public sealed class DeviceChainSum
{
    private readonly Accelerator _accelerator;
    private readonly IDeviceTransport? _transport;
    // sum += part (n,) on a given stream: TrainingKernels.AddInto, the kernel the single process adds its parts with.
    private Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>>? _add;
    private readonly List<(long Offset, long Count)> _released = [];
    private readonly int _rank, _size;

    /// <summary>A chain over <paramref name="transport"/>'s ranks on <paramref name="accelerator"/> (null transport: one rank).</summary>
    public DeviceChainSum(Accelerator accelerator, IDeviceTransport? transport)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        _accelerator = accelerator;
        _transport = transport;
        (_rank, _size) = transport is null ? (0, 1) : (transport.Rank, transport.Size);
    }

    /// <summary>Bytes this rank has received for the sum under way: the running sums so far (<see cref="Finish"/> adds the totals and starts again).</summary>
    public long BytesReceived { get; private set; }

    private AcceleratorStream Stream => _transport?.Stream ?? _accelerator.DefaultStream;

    /// <summary>How many buckets were released since the last <see cref="Finish"/>.</summary>
    public int Pending => _released.Count;

    /// <summary>
    /// Queues bucket [offset, offset + count) of the sum: the running sum from the previous rank (rank 0: none) plus
    /// this rank's <paramref name="parts"/> in order, sent on to the next rank. On rank 0,
    /// <paramref name="sumHoldsEarlierParts"/> says that <paramref name="sum"/> already holds the sum of this rank's
    /// earlier parts (added in order), which <paramref name="parts"/> continue; otherwise the bucket starts as a copy of
    /// the first part.
    /// </summary>
    /// <param name="sum">The sum buffer (the gradient's length); the bucket's range is written.</param>
    /// <param name="offset">The bucket's first float.</param>
    /// <param name="count">The bucket's floats.</param>
    /// <param name="parts">This rank's part gradients (each the sum's length), in part order; at least one.</param>
    /// <param name="sumHoldsEarlierParts">Rank 0 only: continue the sum already in <paramref name="sum"/>.</param>
    public void Release(ArrayView<float> sum, long offset, long count, ReadOnlySpan<ArrayView<float>> parts, bool sumHoldsEarlierParts = false)
    {
        if (parts.IsEmpty) throw new ArgumentException("a rank adds at least one part to the sum.", nameof(parts));
        if (count > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(count), $"a bucket holds at most {int.MaxValue} floats, not {count}.");
        if (offset < 0 || count < 1 || offset + count > sum.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"the bucket [{offset}, {offset + count}) is not inside the sum's {sum.Length} floats.");
        foreach (var part in parts)
            if (part.Length != sum.Length) throw new ArgumentException($"a part holds {part.Length} floats; the sum holds {sum.Length}.", nameof(parts));
        if (sumHoldsEarlierParts && _rank != 0) throw new ArgumentException("only rank 0 starts the chain from a sum it already holds.", nameof(sumHoldsEarlierParts));
        var bucket = sum.SubView(offset, count);
        var stream = Stream;
        _transport?.WaitForCompute();
        int first = 0;
        if (_rank > 0)
        {
            _transport!.Receive(bucket, _rank - 1);
            BytesReceived += count * sizeof(float);
        }
        else if (!sumHoldsEarlierParts)
        {
            parts[0].SubView(offset, count).CopyTo(stream, bucket);
            first = 1;
        }
        _add ??= _accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>>(TrainingKernels.AddInto);
        for (int p = first; p < parts.Length; p++) _add(stream, (int)count, bucket, parts[p].SubView(offset, count));
        if (_rank < _size - 1) _transport!.Send(bucket, _rank + 1);
        _released.Add((offset, count));
    }

    /// <summary>
    /// Queues the last rank's broadcast of every released bucket, in release order, so every rank's
    /// <paramref name="sum"/> holds the total, and makes the default stream wait for it; the list of released buckets
    /// starts again. Returns the bytes this rank received for this sum (running sums and totals).
    /// </summary>
    public long Finish(ArrayView<float> sum)
    {
        if (_size > 1)
            foreach (var (offset, count) in _released)
            {
                _transport!.Broadcast(sum.SubView(offset, count), _size - 1);
                if (_rank != _size - 1) BytesReceived += count * sizeof(float);
            }
        _transport?.ComputeWaitsForTransfers();
        _released.Clear();
        long bytes = BytesReceived;
        BytesReceived = 0;
        return bytes;
    }
}
