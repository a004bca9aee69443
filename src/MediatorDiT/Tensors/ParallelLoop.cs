namespace MediatorDiT.Tensors;

/// <summary>
/// Coarse parallel loops over independent work items (batch x heads, images), capped at
/// <see cref="ComputeSettings.Threads"/>. Runs inline when one thread or one item would do.
/// </summary>
public static class ParallelLoop
{
    [ThreadStatic] private static bool _insideParallelRegion;

    /// <summary>True on a thread currently running a body of <see cref="For"/>; kernels then stay single-threaded.</summary>
    public static bool InsideParallelRegion => _insideParallelRegion;

    public static void For(int count, Action<int> body)
    {
        int threads = Math.Min(ComputeSettings.Threads, count);
        if (threads <= 1 || _insideParallelRegion)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        // One contiguous chunk per thread: few, large tasks keep the scheduling cost negligible.
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, chunk =>
        {
            int start = (int)((long)count * chunk / threads), end = (int)((long)count * (chunk + 1) / threads);
            _insideParallelRegion = true;
            try
            {
                for (int i = start; i < end; i++) body(i);
            }
            finally
            {
                _insideParallelRegion = false;
            }
        });
    }
}
