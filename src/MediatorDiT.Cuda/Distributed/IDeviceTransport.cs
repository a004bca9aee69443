using ILGPU;
using ILGPU.Runtime;

namespace MediatorDiT.Cuda.Distributed;

/// <summary>
/// Transfers of device buffers between the ranks of a run, one device per rank: point to point and a broadcast,
/// queued in call order on the transport's own <see cref="Stream"/>, so they can run beside the kernels the
/// accelerator's default stream computes. <see cref="WaitForCompute"/> and <see cref="ComputeWaitsForTransfers"/>
/// order the two streams without blocking the host. Every pair of ranks makes the matching calls in the same order: a <see cref="Send"/> to rank r is received by r's <see cref="Receive"/> from this rank, the n-th by
/// the n-th; every rank calls <see cref="Broadcast"/> in the same order. Implementations: NCCL between GPUs
/// (<see cref="NcclTransport"/>) and ranks that are threads of one process (<see cref="InProcessDeviceTransport"/>,
/// for tests and the CPU accelerator).
/// </summary>
public interface IDeviceTransport : IDisposable
{
    /// <summary>This rank, 0 to <see cref="Size"/> - 1 (the run communicator's rank).</summary>
    int Rank { get; }

    /// <summary>The number of ranks.</summary>
    int Size { get; }

    /// <summary>What carries the transfers, in words, for logs (e.g. "NCCL 2.27.3").</summary>
    string Name { get; }

    /// <summary>The stream the transfers are queued on (work that must run between them is queued there too).</summary>
    AcceleratorStream Stream { get; }

    /// <summary>Work queued on <see cref="Stream"/> after this call waits for every launch queued on the accelerator's default stream before it.</summary>
    void WaitForCompute();

    /// <summary>Launches queued on the accelerator's default stream after this call wait for everything queued on <see cref="Stream"/> before it.</summary>
    void ComputeWaitsForTransfers();

    /// <summary>Queues sending <paramref name="data"/> to rank <paramref name="peer"/>.</summary>
    void Send(ArrayView<float> data, int peer);

    /// <summary>Queues receiving <paramref name="data"/>'s length of floats from rank <paramref name="peer"/> into it.</summary>
    void Receive(ArrayView<float> data, int peer);

    /// <summary>Queues rank <paramref name="root"/>'s <paramref name="data"/> into every rank's (same length on all ranks).</summary>
    void Broadcast(ArrayView<float> data, int root);
}
