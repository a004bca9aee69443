using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using MediatorDiT.Cuda.Distributed;
using MediatorDiT.Tests.Cuda.Kernels;
using MediatorDiT.Tests.Training.Distributed;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Tests.Cuda.Distributed;

/// <summary>
/// The device chain sum through the in-process transport, every rank a thread with a CPU accelerator of its own:
/// the ranks' parts summed bucket by bucket equal <see cref="OrderedSum"/> (and the host's SumInOrder) bit for bit,
/// for buckets that divide the sum and ones that do not, released in backward order or forward order.
/// </summary>
public class DeviceChainSumTests
{
    private const int Length = 1000, PartsPerRank = 2;

    /// <summary>Parts whose magnitudes differ by up to 2^20, so another order of addition rounds differently.</summary>
    private static float[][] Parts(int count)
    {
        var random = new Random(17);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, Length)
            .Select(_ => (random.NextSingle() - 0.5f) * MathF.Pow(2, random.Next(-10, 10))).ToArray()).ToArray();
    }

    /// <summary>Runs the chain on <paramref name="ranks"/> thread ranks; returns every rank's sum and its host SumInOrder.</summary>
    internal static (float[] Device, float[] Host)[] Run(int ranks, float[][] parts, int bucket, bool backwardOrder, bool rank0Continues)
    {
        var group = new InProcessDeviceTransport.Group(ranks);
        return ThreadRanks.Run(ranks, comm =>
        {
            using var context = Context.Create(b => b.CPU().Math(MathMode.Default));
            using var accelerator = context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel);
            using var transport = group.Join(comm.Rank, accelerator);
            var mine = parts.Skip(comm.Rank * PartsPerRank).Take(PartsPerRank).ToArray();
            var buffers = mine.Select(p => accelerator.Allocate1D(p)).ToArray();
            using var sum = accelerator.Allocate1D<float>(Length);
            var chain = new DeviceChainSum(accelerator, transport);
            var views = buffers.Select(b => (ArrayView<float>)b.View).ToArray();
            // Rank 0 may add all but its last part before the chain starts, as the training backend does.
            bool continues = rank0Continues && comm.Rank == 0;
            ArrayView<float> total = sum.View;
            if (continues) views[0].CopyTo(total);
            var released = continues ? views[1..] : views;
            int buckets = (Length + bucket - 1) / bucket;
            var order = Enumerable.Range(0, buckets);
            foreach (int b in backwardOrder ? order.Reverse() : order)
                chain.Release(sum.View, (long)b * bucket, Math.Min(bucket, Length - (long)b * bucket), released, continues);
            long bytes = chain.Finish(sum.View);
            Assert.Equal(comm.Rank == 0 ? Length * 4L : comm.Rank == ranks - 1 ? Length * 4L : 2 * Length * 4L, bytes);
            accelerator.Synchronize();
            var device = sum.GetAsArray1D();
            foreach (var b in buffers) b.Dispose();
            var host = new float[Length];
            comm.SumInOrder(mine.SelectMany(p => p).ToArray(), Length, host);
            return (device, host);
        });
    }

    [Theory]
    [InlineData(2, 250, true)]
    [InlineData(2, 300, true)]
    [InlineData(2, 4096, false)]
    [InlineData(3, 250, false)]
    [InlineData(3, 300, true)]
    [InlineData(3, 1, true)]
    public void TheChainSum_EqualsOrderedSumBitForBit(int ranks, int bucket, bool backwardOrder)
    {
        var parts = Parts(ranks * PartsPerRank);
        var expected = new float[Length];
        OrderedSum.Local(parts.SelectMany(p => p).ToArray(), Length, expected);
        // The test would notice another order: adding the parts last to first gives other bits somewhere.
        var reversed = new float[Length];
        OrderedSum.Local(parts.Reverse().SelectMany(p => p).ToArray(), Length, reversed);
        Assert.NotEqual(expected.Select(BitConverter.SingleToInt32Bits), reversed.Select(BitConverter.SingleToInt32Bits));
        foreach (bool continues in new[] { false, true })
            foreach (var (device, host) in Run(ranks, parts, bucket, backwardOrder, continues))
            {
                KernelData.AssertSameBits(expected, device);
                KernelData.AssertSameBits(expected, host);
            }
    }

    [Fact]
    public void OneRank_AddsItsPartsWithoutTransfers()
    {
        var parts = Parts(3);
        var expected = new float[Length];
        OrderedSum.Local(parts.SelectMany(p => p).ToArray(), Length, expected);
        using var context = Context.Create(b => b.CPU().Math(MathMode.Default));
        using var accelerator = context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel);
        var buffers = parts.Select(p => accelerator.Allocate1D(p)).ToArray();
        using var sum = accelerator.Allocate1D<float>(Length);
        var chain = new DeviceChainSum(accelerator, null);
        var views = buffers.Select(b => (ArrayView<float>)b.View).ToArray();
        chain.Release(sum.View, 600, 400, views);
        chain.Release(sum.View, 0, 600, views);
        Assert.Equal(0, chain.Finish(sum.View));
        accelerator.Synchronize();
        KernelData.AssertSameBits(expected, sum.GetAsArray1D());
        foreach (var b in buffers) b.Dispose();
    }

    [Fact]
    public void ABucketOutsideTheSum_OrAPartOfAnotherLength_IsOneSentence()
    {
        using var context = Context.Create(b => b.CPU().Math(MathMode.Default));
        using var accelerator = context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel);
        using var sum = accelerator.Allocate1D<float>(10);
        using var shorter = accelerator.Allocate1D<float>(9);
        var chain = new DeviceChainSum(accelerator, null);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => chain.Release(sum.View, 8, 4, [sum.View]));
        Assert.StartsWith("the bucket [8, 12) is not inside the sum's 10 floats.", e.Message);
        var p = Assert.Throws<ArgumentException>(() => chain.Release(sum.View, 0, 4, [shorter.View]));
        Assert.StartsWith("a part holds 9 floats; the sum holds 10.", p.Message);
    }

    [Fact]
    public void ATransportOfAnotherRun_IsRefusedByTheBackend()
    {
        var group = new InProcessDeviceTransport.Group(3);
        using var context = Context.Create(b => b.CPU().Math(MathMode.Default));
        using var accelerator = context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel);
        var ranks = new ThreadRanks(2);
        var e = Assert.Throws<ArgumentException>(() => new MediatorDiT.Cuda.Training.DeviceTrainingBackend(accelerator, new MediatorDiT.Diffusion.Transport(),
            communicator: ranks.Rank(1), exchange: new DeviceExchange(group.Join(1, accelerator))));
        Assert.Equal("the device transport is rank 1 of 3, but the run's communicator is rank 1 of 2.", e.Message);
    }
}
