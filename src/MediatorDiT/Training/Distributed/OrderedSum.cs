using System.Numerics.Tensors;

namespace MediatorDiT.Training.Distributed;

/// <summary>The left-to-right sum of blocks that <see cref="ICommunicator.SumInOrder"/> defines.</summary>
public static class OrderedSum
{
    /// <summary>result = block 0 + block 1 + ... (left to right, element by element) of <paramref name="blocks"/>.</summary>
    public static void Local(ReadOnlySpan<float> blocks, int blockLength, Span<float> result)
    {
        Check(blocks, blockLength, result);
        blocks[..blockLength].CopyTo(result);
        for (int b = 1; b < blocks.Length / blockLength; b++) TensorPrimitives.Add(result, blocks.Slice(b * blockLength, blockLength), result);
    }

    /// <summary>Continues a running sum: result += each block of <paramref name="blocks"/>, in order.</summary>
    public static void Continue(ReadOnlySpan<float> blocks, int blockLength, Span<float> result)
    {
        Check(blocks, blockLength, result);
        for (int b = 0; b < blocks.Length / blockLength; b++) TensorPrimitives.Add(result, blocks.Slice(b * blockLength, blockLength), result);
    }

    /// <summary><see cref="ICommunicator.SumInOrder"/> by gathering every rank's blocks and adding them on every rank.</summary>
    public static long ByGather(ICommunicator comm, ReadOnlySpan<float> localBlocks, int blockLength, Span<float> result)
    {
        ArgumentNullException.ThrowIfNull(comm);
        Check(localBlocks, blockLength, result);
        if (comm.Size == 1)
        {
            Local(localBlocks, blockLength, result);
            return 0;
        }
        var gathered = new float[(long)localBlocks.Length * comm.Size];
        comm.AllGather(localBlocks, gathered);
        Local(gathered, blockLength, result);
        return (long)localBlocks.Length * (comm.Size - 1) * sizeof(float);
    }

    private static void Check(ReadOnlySpan<float> blocks, int blockLength, Span<float> result)
    {
        if (blockLength < 1 || blocks.Length == 0 || blocks.Length % blockLength != 0)
            throw new ArgumentException($"{blocks.Length} values are no whole number of blocks of {blockLength}.", nameof(blocks));
        if (result.Length != blockLength)
            throw new ArgumentException($"the result holds {result.Length} values; a block holds {blockLength}.", nameof(result));
    }
}
