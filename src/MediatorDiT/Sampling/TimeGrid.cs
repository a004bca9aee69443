namespace MediatorDiT.Sampling;

/// <summary>The samplers' float32 time grids, computed as torch.linspace does on a CPU.</summary>
public static class TimeGrid
{
    /// <summary>
    /// The most time points a sampler takes. Far above any useful count (SiT samples with 250, DiT with
    /// 1000 steps at most), and low enough that per-step buffers and records stay small.
    /// </summary>
    public const int MaxPoints = 10_000;

    /// <summary>
    /// <paramref name="count"/> evenly spaced float32 points from start to end: step = (end - start) / (count - 1);
    /// the first half counts up from start, the second half down from end, so both ends are exact.
    /// </summary>
    public static float[] Linspace(double start, double end, int count)
    {
        if (count < 1) throw new MediatorDiTException($"a time grid needs at least one point, got {count}.");
        float s = (float)start, e = (float)end;
        var grid = new float[count];
        if (count == 1)
        {
            grid[0] = s;
            return grid;
        }
        float step = (e - s) / (count - 1);
        int halfway = count / 2;
        for (int i = 0; i < count; i++)
            grid[i] = i < halfway ? s + step * i : e - step * (count - i - 1);
        return grid;
    }
}
