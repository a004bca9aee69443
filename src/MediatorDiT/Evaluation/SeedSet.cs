using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// Generates the seed set exactly as `mdit sample --seed S --batch-size B` does (world size 1): one
/// <see cref="RandomSource"/>(S); per batch first z, then one draw per SDE step for the whole state;
/// labels cycle through <c>labels</c> (or 0..classes-1). So a schedule found by the search, sampled with
/// the same seed, batch size, image count and labels, reproduces the search's samples and FLOPs.
/// </summary>
public static class SeedSet
{
    /// <summary>Labels of samples 0..count-1: the given list cycled, else i mod the class count.</summary>
    public static int[] Labels(int count, IReadOnlyList<int>? labels, int numClasses) =>
        Enumerable.Range(0, count).Select(i => labels is { Count: > 0 } ? labels[i % labels.Count] : i % numClasses).ToArray();

    /// <summary>The batches, generated lazily in order (each needs the random state the previous one left).</summary>
    public static IEnumerable<SeedBatch> Batches(ModelLadder ladder, int count, int batchSize, ulong seed,
        IReadOnlyList<int>? labels, int drawsPerRun)
    {
        ArgumentNullException.ThrowIfNull(ladder);
        if (count < 1) throw new MediatorDiTException($"the seed set needs at least one sample, got {count}.");
        if (batchSize < 1) throw new MediatorDiTException($"the batch size must be at least 1, got {batchSize}.");
        var all = Labels(count, labels, ladder.NumClasses);
        ladder.ValidateLabels(all);
        return Generate(ladder, all, batchSize, seed, drawsPerRun);
    }

    private static IEnumerable<SeedBatch> Generate(ModelLadder ladder, int[] all, int batchSize, ulong seed, int drawsPerRun)
    {
        var rng = new RandomSource(seed);
        var shape = ladder.SampleShape;
        for (int start = 0; start < all.Length; start += batchSize)
        {
            int n = Math.Min(batchSize, all.Length - start);
            var z = new Tensor(n, shape[0], shape[1], shape[2]);
            rng.FillGaussian(z.Span);
            Tensor? draws = null;
            if (drawsPerRun > 0)
            {
                // As GaussianNoiseSource does during the run: one fill of the whole state per step.
                draws = new Tensor(drawsPerRun, n * ladder.RowsPerSample, shape[0], shape[1], shape[2]);
                int per = draws.Length / drawsPerRun;
                for (int k = 0; k < drawsPerRun; k++) rng.FillGaussian(draws.Span.Slice(k * per, per));
            }
            yield return new SeedBatch(Enumerable.Range(start, n).ToArray(), all[start..(start + n)], z, draws);
        }
    }
}
