using MediatorDiT.Diffusion;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// Generates the seed set exactly as the pipeline (and `mdit sample --seed S`) does: every sample's z and
/// per-step draws come from its own generator, seeded by (S, its index) (<see cref="IndexedNoiseSource"/>);
/// labels cycle through <c>labels</c> (or 0..classes-1). So a schedule found by the search, sampled with the
/// same seed, image count and labels, reproduces the search's samples and FLOPs at any batch size.
/// </summary>
internal static class SeedSet
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
        var shape = ladder.SampleShape.ToArray();
        for (int start = 0; start < all.Length; start += batchSize)
        {
            int n = Math.Min(batchSize, all.Length - start);
            var noise = new IndexedNoiseSource(seed, Enumerable.Range(start, n).ToArray());
            var z = noise.InitialNoise(shape);
            Tensor? draws = null;
            if (drawsPerRun > 0)
            {
                // As the noise source fills them during the run: one draw of the whole state (rows = n x rows per sample) per step.
                draws = new Tensor(drawsPerRun, n * ladder.RowsPerSample, shape[0], shape[1], shape[2]);
                noise.Prepare(draws.Shape.AsSpan(1), drawsPerRun);
                int per = draws.Length / drawsPerRun;
                for (int k = 0; k < drawsPerRun; k++) noise.Next(draws.Span.Slice(k * per, per));
            }
            yield return new SeedBatch(Enumerable.Range(start, n).ToArray(), all[start..(start + n)], z, draws);
        }
    }
}
