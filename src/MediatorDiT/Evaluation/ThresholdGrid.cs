namespace MediatorDiT.Evaluation;

/// <summary>
/// The authors' grid of switch ratios: ratio1 = 0.1, 0.2, ..., 1.0 and each further ratio from 0 up to the
/// one before it in steps of 0.1 (a ratio of 0 never leaves its model; equal ratios move twice at once).
/// Ordered by ratio1, then ratio2, ... ascending. Sizes: 10 pairs for a 2-model ladder, 65 for 3 models
/// (sum over k = 1..10 of k + 1), 285 for 4.
/// </summary>
public static class ThresholdGrid
{
    /// <summary>Grid resolution: ratios are multiples of 1 / <see cref="Steps"/>.</summary>
    public const int Steps = 10;

    /// <summary>The grid for a ladder of <paramref name="ladderSize"/> models (ladderSize - 1 ratios per point).</summary>
    public static IReadOnlyList<ThresholdPair> For(int ladderSize)
    {
        if (ladderSize < 2)
            throw new MediatorDiTException($"a threshold search needs a ladder of at least 2 models to switch between, got {ladderSize}.");
        var pairs = new List<ThresholdPair>();
        var tenths = new int[ladderSize - 1];
        void Fill(int position)
        {
            if (position == tenths.Length)
            {
                // k / 10.0 is the double nearest to the decimal k/10, so ratios print as 0.3, not 0.30000000000000004.
                pairs.Add(new ThresholdPair(pairs.Count, tenths.Select(k => k / (double)Steps).ToArray()));
                return;
            }
            int from = position == 0 ? 1 : 0, to = position == 0 ? Steps : tenths[position - 1];
            for (int k = from; k <= to; k++)
            {
                tenths[position] = k;
                Fill(position + 1);
            }
        }
        Fill(0);
        return pairs;
    }

    /// <summary>The grid size for a ladder of <paramref name="ladderSize"/> models.</summary>
    public static int Size(int ladderSize) => For(ladderSize).Count;
}
