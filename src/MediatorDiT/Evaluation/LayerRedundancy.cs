using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>The redundancy of one layer's attention for each image of a batch: the per-head values averaged over heads.</summary>
internal static class LayerRedundancy
{
    /// <summary>
    /// For images 0..<paramref name="images"/>-1 of the attention input (B*N, D) of <paramref name="attention"/>:
    /// the mean over heads of <see cref="AttentionRedundancy.MeanPairwiseJensenShannon(ReadOnlyMemory{float}, int, int, int)"/>
    /// of each head's (N, N) map. Images are shared out over the threads.
    /// </summary>
    public static double[] PerImage(IAttentionMaps attention, Tensor input, int images, int tokens, int tileRows = AttentionRedundancy.DefaultTileRows)
    {
        ArgumentNullException.ThrowIfNull(attention);
        int dim = input.Rank == 2 ? input.Dim(1) : input.Length / Math.Max(1, images * tokens);
        if (tokens < 2 || images < 1 || (long)images * tokens * dim > input.Length)
            throw new MediatorDiTException($"the attention input [{input.ShapeString}] does not hold {images} images of {tokens} tokens.");
        var result = new double[images];
        float[] data = input.Data;
        ParallelLoop.For(images, b =>
        {
            var one = new Tensor(data.AsSpan(b * tokens * dim, tokens * dim).ToArray(), [tokens, dim]);
            var maps = attention.ComputeAttentionProbabilities(one);
            int heads = maps.Dim(0);
            double sum = 0;
            for (int h = 0; h < heads; h++)
                sum += AttentionRedundancy.MeanPairwiseJensenShannon(maps.Data.AsMemory(h * tokens * tokens, tokens * tokens), tokens, tokens, tileRows);
            result[b] = sum / heads;
        });
        return result;
    }
}
