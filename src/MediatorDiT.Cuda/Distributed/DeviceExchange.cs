namespace MediatorDiT.Cuda.Distributed;

/// <summary>
/// How a data-parallel <see cref="Training.DeviceTrainingBackend"/> sums the ranks' part gradients on the devices
/// (<see cref="DeviceChainSum"/>) instead of through the host: the transport, the bucket size, and whether buckets
/// start along the chain as the backward pass finishes them (overlap) or after it. Either way the additions are the
/// single process's, so the weights are bit for bit the same.
/// </summary>
/// <param name="Transport">The ranks' device transfers (NCCL between GPUs; threads of one process in tests).</param>
public sealed record DeviceExchange(IDeviceTransport Transport)
{
    /// <summary>Floats per bucket (default 2^20, 4 MB); the last bucket holds the rest.</summary>
    public int BucketFloats { get; init; } = 1 << 20;

    /// <summary>Start each bucket's exchange as soon as the backward pass of the step's last part has finished its gradients (default), else after the whole pass.</summary>
    public bool Overlap { get; init; } = true;

    /// <summary>Whether the backend disposes <see cref="Transport"/> when it is disposed.</summary>
    public bool OwnsTransport { get; init; }

    /// <summary>Throws an <see cref="ArgumentException"/> with one sentence for a transport or bucket size that does not fit the run.</summary>
    internal void Check(int rank, int size)
    {
        ArgumentNullException.ThrowIfNull(Transport);
        if (BucketFloats < 1) throw new ArgumentException($"a gradient bucket holds at least one float, not {BucketFloats}.");
        if (Transport.Rank != rank || Transport.Size != size)
            throw new ArgumentException($"the device transport is rank {Transport.Rank} of {Transport.Size}, but the run's communicator is rank {rank} of {size}.");
    }
}
