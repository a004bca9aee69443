using System.Text.Json.Nodes;
using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Distributed;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.GpuCheck;

/// <summary>
/// NCCL on one rank (docs/DISTRIBUTED.md, "GPU ranks"): libnccl.so.2 found and its version; on a CUDA device a
/// communicator of one rank bootstrapped as the training ranks bootstrap it, the device chain sum of a bucket of three
/// parts against the host's ordered sum (bit for bit), and a broadcast that must leave the buffer as it was. A missing
/// library, or an accelerator that is not a CUDA device, is reported in the case's values, not as a failure.
/// </summary>
public static class NcclChecks
{
    /// <summary>Floats of the checked bucket (not a multiple of any launch's group size).</summary>
    private const int Length = 1_000_003;

    /// <summary>The one-rank NCCL case; fills <paramref name="entry"/>.</summary>
    public static void OneRank(CheckDevice device, JsonObject entry)
    {
        string version, path;
        try
        {
            (version, path) = NcclTransport.Probe();
        }
        catch (MediatorDiTException e)
        {
            entry["found"] = false;
            entry["problem"] = e.Message;
            return;
        }
        entry["found"] = true;
        entry["version"] = version;
        entry["path"] = path;
        if (!device.IsCuda)
        {
            entry["communicator"] = "not run: NCCL needs a CUDA device";
            return;
        }

        var accelerator = device.Accelerator;
        using var nccl = NcclTransport.Create(accelerator, SingleProcessCommunicator.Instance);
        entry["communicator"] = $"{nccl.Name}, rank {nccl.Rank} of {nccl.Size}";
        var random = new Random(3);
        var parts = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, Length).Select(_ => (random.NextSingle() - 0.5f) * 1e3f).ToArray()).ToArray();
        var expected = new float[Length];
        OrderedSum.Local(parts.SelectMany(p => p).ToArray(), Length, expected);
        var buffers = parts.Select(p => accelerator.Allocate1D(p)).ToArray();
        try
        {
            using var sum = accelerator.Allocate1D<float>(Length);
            var views = buffers.Select(b => (ArrayView<float>)b.View).ToArray();
            var chain = new DeviceChainSum(accelerator, nccl);
            // Two buckets released end first, as the backward releases them.
            chain.Release(sum.View, Length / 2, Length - Length / 2, views);
            chain.Release(sum.View, 0, Length / 2, views);
            chain.Finish(sum.View);
            nccl.Broadcast(sum.View, 0);
            nccl.ComputeWaitsForTransfers();
            accelerator.Synchronize();
            var actual = sum.GetAsArray1D();
            int differing = expected.Zip(actual).Count(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
            entry["chain_sum_floats"] = Length;
            entry["chain_sum_differing_floats"] = differing;
            entry["pass"] = differing == 0;
            if (differing != 0) throw new InvalidOperationException($"the one-rank chain sum differs from the ordered sum in {differing} of {Length} floats.");
        }
        finally
        {
            foreach (var b in buffers) b.Dispose();
        }
    }
}
