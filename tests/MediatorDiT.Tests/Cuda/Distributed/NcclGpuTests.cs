using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda;
using MediatorDiT.Cuda.Distributed;
using MediatorDiT.Devices;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Tests.Cuda.Distributed;

/// <summary>A test that needs a CUDA device and libnccl.so.2: skipped, with the reason, where either is missing.</summary>
public sealed class NcclFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> s_missing = new(() =>
        DeviceAvailability.Problem(new DeviceSelection(ComputeDevice.Cuda, 0)) is string device ? $"needs a CUDA device: {device}."
        : CudaLibraries.Find("libnccl.so.2").Path is null ? "needs NCCL (libnccl.so.2)." : null);

    public NcclFactAttribute()
    {
        if (s_missing.Value is string missing) Skip = missing;
    }
}

/// <summary>NCCL on the real card with one rank: the communicator starts, the chain of one rank sums in order, a broadcast keeps the data.</summary>
[Trait("Category", "Gpu")]
public class NcclGpuTests
{
    [NcclFact]
    public void OneRankCommunicator_ChainOfOneAndBroadcast()
    {
        using var cuda = CudaDevice.Open(new DeviceSelection(ComputeDevice.Cuda, 0));
        var accelerator = cuda.Accelerator;
        using var nccl = NcclTransport.Create(accelerator, SingleProcessCommunicator.Instance);
        Assert.Equal((0, 1), (nccl.Rank, nccl.Size));
        Assert.StartsWith("NCCL 2.", nccl.Name);

        const int length = 100_003;
        var parts = Enumerable.Range(0, 3).Select(i => KernelData.Uniform(length, 11 + i, -1e3f, 1e3f)).ToArray();
        var expected = new float[length];
        OrderedSum.Local(parts.SelectMany(p => p).ToArray(), length, expected);
        var buffers = parts.Select(p => accelerator.Allocate1D(p)).ToArray();
        using var sum = accelerator.Allocate1D<float>(length);
        var chain = new DeviceChainSum(accelerator, nccl);
        var views = buffers.Select(b => (ArrayView<float>)b.View).ToArray();
        chain.Release(sum.View, 50_000, length - 50_000, views);
        chain.Release(sum.View, 0, 50_000, views);
        Assert.Equal(0, chain.Finish(sum.View));
        nccl.Broadcast(sum.View, 0);
        nccl.ComputeWaitsForTransfers();
        accelerator.Synchronize();
        KernelData.AssertSameBits(expected, sum.GetAsArray1D());
        foreach (var b in buffers) b.Dispose();
    }

    [NcclFact]
    public void ASendToItself_IsOneSentenceBeforeNcclIsCalled()
    {
        using var cuda = CudaDevice.Open(new DeviceSelection(ComputeDevice.Cuda, 0));
        using var nccl = NcclTransport.Create(cuda.Accelerator, SingleProcessCommunicator.Instance);
        using var buffer = cuda.Accelerator.Allocate1D<float>(4);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => nccl.Send(buffer.View, 0));
        Assert.StartsWith("peer 0 is not another of the 1 ranks (this is rank 0).", e.Message);
    }
}
