using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MediatorDiT.Devices;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Cuda.Distributed;

/// <summary>
/// <see cref="IDeviceTransport"/> by NCCL (libnccl.so.2, found at run time as the driver and cuBLAS are): one
/// communicator over the run's ranks, one GPU per rank, every transfer (ncclSend, ncclRecv, ncclBroadcast of fp32
/// buffers) queued on a stream of its own, so it runs beside the training kernels; the streams wait for each other
/// through CUDA events (<see cref="CudaStreamOrder"/>), never through the host. The communicator is bootstrapped
/// over the run's own <see cref="ICommunicator"/>: rank 0 makes the unique id and broadcasts its 128 bytes, so MPI,
/// TCP and torchrun-style launches all start NCCL the same way.
/// </summary>
public sealed unsafe class NcclTransport : IDeviceTransport
{
    private readonly NcclApi _api;
    private readonly CudaStream _transfers;
    private readonly IntPtr _stream, _compute;
    private readonly CudaStreamOrder _order;
    private IntPtr _comm;
    private bool _failed;

    private NcclTransport(NcclApi api, IntPtr comm, CudaAccelerator accelerator, CudaStreamOrder order, int rank, int size, string version)
    {
        (_api, _comm, _order, Rank, Size, Name) = (api, comm, order, rank, size, $"NCCL {version}");
        _transfers = (CudaStream)accelerator.CreateStream();
        _stream = _transfers.StreamPtr;
        _compute = ((CudaStream)accelerator.DefaultStream).StreamPtr;
    }

    /// <inheritdoc/>
    public AcceleratorStream Stream => _transfers;

    /// <inheritdoc/>
    public void WaitForCompute() => _order.Order(_compute, _stream);

    /// <inheritdoc/>
    public void ComputeWaitsForTransfers() => _order.Order(_stream, _compute);

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size { get; }

    /// <inheritdoc/>
    public string Name { get; }

    /// <summary>
    /// The version of the libnccl.so.2 found in <paramref name="environment"/> (null: this process's), e.g. "2.27.3", and
    /// its path; a <see cref="MediatorDiTException"/> with one sentence when it is missing or cannot be loaded.
    /// </summary>
    public static (string Version, string Path) Probe(CudaSearchEnvironment? environment = null)
    {
        var api = NcclApi.Load(environment);
        return (api.Version(), api.Path);
    }

    /// <summary>
    /// Joins every rank of <paramref name="communicator"/> into one NCCL communicator on <paramref name="accelerator"/>
    /// (collective: every rank calls it). Rank 0's unique id reaches the others through
    /// <paramref name="communicator"/>.Broadcast; ncclCommInitRank runs with the accelerator's context current.
    /// </summary>
    /// <param name="accelerator">This rank's CUDA device.</param>
    /// <param name="communicator">The run's ranks.</param>
    /// <param name="environment">Where to look for libnccl.so.2 (null: this process's environment).</param>
    /// <exception cref="MediatorDiTException">NCCL was not found on some rank, or a call failed (one sentence with NCCL's error string).</exception>
    public static NcclTransport Create(Accelerator accelerator, ICommunicator communicator, CudaSearchEnvironment? environment = null) =>
        TryCreate(accelerator, communicator, out string? problem, environment) ?? throw new MediatorDiTException(problem!);

    /// <summary>
    /// <see cref="Create"/>, or null on every rank when some rank cannot load NCCL (the ranks agree first, so none
    /// waits for another), with <paramref name="problem"/> saying which rank and why. A failure after loading throws.
    /// </summary>
    public static NcclTransport? TryCreate(Accelerator accelerator, ICommunicator communicator, out string? problem, CudaSearchEnvironment? environment = null)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        ArgumentNullException.ThrowIfNull(communicator);
        if (accelerator is not CudaAccelerator cuda)
            throw new MediatorDiTException($"NCCL transfers need a CUDA device; {accelerator.Name} is not one.");
        NcclApi? api = null;
        problem = null;
        try
        {
            api = NcclApi.Load(environment);
        }
        catch (MediatorDiTException e)
        {
            problem = e.Message;
        }
        var loaded = new int[communicator.Size];
        communicator.AllGather<int>([api is null ? 0 : 1], loaded);
        if (Array.IndexOf(loaded, 0) is int missing and >= 0)
        {
            problem = missing == communicator.Rank ? problem : $"rank {missing} could not load NCCL ({NcclApi.File}).";
            return null;
        }

        var id = new NcclUniqueId();
        if (communicator.Rank == 0) api!.Check(api.GetUniqueId(&id), "ncclGetUniqueId");
        communicator.Broadcast(new Span<byte>(id.Internal, NcclUniqueId.Bytes), 0);
        cuda.Bind(); // NCCL and the events use the current context: the accelerator's
        string driver = CudaLibraries.Locate().Driver ?? throw new MediatorDiTException("no NVIDIA driver (libcuda.so.1) was found for the stream events.");
        IntPtr comm;
        api!.Check(api.CommInitRank(&comm, communicator.Size, id, communicator.Rank), "ncclCommInitRank");
        cuda.Bind(); // NCCL's runtime may have made the device's primary context current: the events belong in the accelerator's
        try
        {
            return new NcclTransport(api, comm, cuda, new CudaStreamOrder(driver), communicator.Rank, communicator.Size, api.Version());
        }
        catch
        {
            api.CommAbort(comm);
            throw;
        }
    }

    /// <inheritdoc/>
    public void Send(ArrayView<float> data, int peer)
    {
        CheckPeer(peer);
        Call(_api.Send(data.LoadEffectiveAddressAsPtr(), (nuint)data.Length, NcclApi.Float32, peer, Comm, _stream), "ncclSend");
    }

    /// <inheritdoc/>
    public void Receive(ArrayView<float> data, int peer)
    {
        CheckPeer(peer);
        Call(_api.Recv(data.LoadEffectiveAddressAsPtr(), (nuint)data.Length, NcclApi.Float32, peer, Comm, _stream), "ncclRecv");
    }

    /// <inheritdoc/>
    public void Broadcast(ArrayView<float> data, int root)
    {
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), $"root {root} is outside the {Size} ranks.");
        IntPtr p = data.LoadEffectiveAddressAsPtr();
        Call(_api.Broadcast(p, p, (nuint)data.Length, NcclApi.Float32, root, Comm, _stream), "ncclBroadcast");
    }

    private IntPtr Comm => _comm != IntPtr.Zero ? _comm : throw new ObjectDisposedException(nameof(NcclTransport));

    private void Call(int result, string call)
    {
        if (result == (int)NcclResult.Success) return;
        _failed = true;
        _api.Check(result, call);
    }

    private void CheckPeer(int peer)
    {
        if ((uint)peer >= (uint)Size || peer == Rank)
            throw new ArgumentOutOfRangeException(nameof(peer), $"peer {peer} is not another of the {Size} ranks (this is rank {Rank}).");
    }

    /// <summary>Destroys the communicator (after its queued transfers), or aborts it after a failed call so no peer is waited for.</summary>
    public void Dispose()
    {
        if (_comm == IntPtr.Zero) return;
        if (_failed) _api.CommAbort(_comm);
        else
        {
            _transfers.Synchronize();
            _api.CommDestroy(_comm);
        }
        _comm = IntPtr.Zero;
        _order.Dispose();
        _transfers.Dispose();
    }
}
