using System.Collections.Concurrent;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using MediatorDiT.Cuda.Distributed;
using MediatorDiT.Cuda.Training;
using MediatorDiT.Diffusion;
using MediatorDiT.Tests.Cuda.Kernels;
using MediatorDiT.Tests.Cuda.Training;
using MediatorDiT.Tests.Training.Distributed;
using MediatorDiT.Training;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Tests.Cuda.Distributed;

/// <summary>
/// <see cref="DeviceTrainingBackend"/> on thread ranks whose part gradients are summed on the devices
/// (<see cref="DeviceChainSum"/> over <see cref="InProcessDeviceTransport"/>, each rank on a CPU accelerator of its
/// own): the weights, moments and EMA equal one process's bit for bit, with the buckets released during the
/// backward (in backward order) or after it, with one or several parts per rank, for a ladder too.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceExchangeTrainingTests(AcceleratorFixture device)
{
    /// <summary>Records the address of every bucket rank 0 sends, in order, and passes the transfer on.</summary>
    private sealed class Recording(IDeviceTransport inner, ConcurrentQueue<IntPtr> sends) : IDeviceTransport
    {
        public int Rank => inner.Rank;
        public int Size => inner.Size;
        public string Name => inner.Name;
        public AcceleratorStream Stream => inner.Stream;
        public void WaitForCompute() => inner.WaitForCompute();
        public void ComputeWaitsForTransfers() => inner.ComputeWaitsForTransfers();

        public void Send(ArrayView<float> data, int peer)
        {
            sends.Enqueue(data.LoadEffectiveAddressAsPtr()); // the CPU accelerator's views are host memory
            inner.Send(data, peer);
        }

        public void Receive(ArrayView<float> data, int peer) => inner.Receive(data, peer);
        public void Broadcast(ArrayView<float> data, int root) => inner.Broadcast(data, root);
        public void Dispose() => inner.Dispose();
    }

    [Theory]
    [InlineData(2, 2, true, 1000, new int[] { 4 })]
    [InlineData(2, 2, false, 1000, new int[] { 4 })]
    [InlineData(3, 1, true, 777, new int[] { 4 })]
    [InlineData(2, 1, true, 500, new int[] { 1, 4 })]
    public void RanksSummingOnTheDevices_GiveOneProcesssStateBitForBit(int ranks, int partsPerRank, bool overlap, int bucket, int[] mediators)
    {
        var config = DeviceTrainingBackendTests.Config(16, 2, learnSigma: false);
        int parts = ranks * partsPerRank;
        var batches = Enumerable.Range(0, 3).Select(i => DeviceTrainingBackendTests.Batch(config, parts, parts, i % mediators.Length, 1.0, 40 + i)).ToArray();
        var sends = new ConcurrentQueue<IntPtr>();
        (TrainableNetwork Net, TrainableNetwork Ema, AdamW Opt) Train(ICommunicator? comm, Accelerator accelerator, DeviceExchange? exchange)
        {
            var (net, ema, opt) = DeviceTrainingBackendTests.Run(config, mediators, 5);
            using var backend = new DeviceTrainingBackend(accelerator, new Transport(), communicator: comm, exchange: exchange);
            backend.Attach(net, ema, opt);
            foreach (var batch in batches)
                backend.Step(comm is null ? batch : batch.Part(partsPerRank * comm.Rank, partsPerRank));
            backend.SyncToHost();
            return (net, ema, opt);
        }
        var single = Train(null, device.Accelerator, null);
        var group = new InProcessDeviceTransport.Group(ranks);
        var results = ThreadRanks.Run(ranks, comm =>
        {
            using var context = Context.Create(b => b.CPU().Math(MathMode.Default));
            using var accelerator = context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel);
            var transport = group.Join(comm.Rank, accelerator);
            if (comm.Rank == 0) transport = new Recording(transport, sends);
            return Train(comm, accelerator, new DeviceExchange(transport) { BucketFloats = bucket, Overlap = overlap, OwnsTransport = true });
        });
        foreach (var (net, ema, opt) in results)
        {
            for (int i = 0; i < single.Net.Parameters.Count; i++)
            {
                string name = single.Net.NameOf(single.Net.Parameters[i]);
                KernelData.AssertSameBits(single.Net.Parameters[i].Value.Span.ToArray(), net.Parameters[i].Value.Span.ToArray());
                KernelData.AssertSameBits(single.Ema.Parameters[i].Value.Span.ToArray(), ema.Parameters[i].Value.Span.ToArray());
            }
            for (int i = 0; i < single.Opt.State.Count; i++)
            {
                Assert.Equal(single.Opt.State[i].Step, opt.State[i].Step);
                KernelData.AssertSameBits(single.Opt.State[i].ExpAvg.Span.ToArray(), opt.State[i].ExpAvg.Span.ToArray());
                KernelData.AssertSameBits(single.Opt.State[i].ExpAvgSq.Span.ToArray(), opt.State[i].ExpAvgSq.Span.ToArray());
            }
        }

        // Rank 0 sent every bucket once per step, each step's from the buffer's end (the final layer, whose gradients
        // the backward finishes first) to its start (the embeddings): backward order. A ladder's other members' biases
        // lie after the shared weights and are final from the start, so there only the set of buckets is fixed.
        long length = single.Net.Parameters.Sum(p => (long)p.Value.Length);
        int buckets = (int)((length + bucket - 1) / bucket);
        // Every send is a bucket of the state's sum: the lowest address is bucket 0's.
        var addresses = sends.ToArray();
        long first = addresses.Min(a => (long)a);
        var sent = addresses.Select(a => ((long)a - first) / sizeof(float)).ToArray();
        Assert.Equal(batches.Length * buckets, sent.Length);
        for (int step = 0; step < batches.Length; step++)
        {
            var offsets = sent.Skip(step * buckets).Take(buckets).ToArray();
            var expected = Enumerable.Range(0, buckets).Select(b => (long)b * bucket).Reverse();
            Assert.Equal(expected, mediators.Length == 1 ? offsets : offsets.OrderDescending());
        }
    }
}
