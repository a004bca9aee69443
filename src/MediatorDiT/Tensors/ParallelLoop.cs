namespace MediatorDiT.Tensors;

/// <summary>
/// Coarse parallel loops over independent work items (batch x heads, images), capped at
/// the current <see cref="ComputeContext.Threads"/>. Runs inline when one thread or one item would do, or when
/// already inside a parallel region (nested loops and products stay on their thread).
/// </summary>
internal static class ParallelLoop
{
    // Up to this many items per thread are claimed one at a time; longer loops are cut into this many
    // contiguous chunks per thread so claiming stays cheap for tiny bodies.
    internal const int ClaimsPerThread = 16;

    /// <summary>
    /// Most parts a problem is cut into where the cut changes results: the shapes handed to OpenBLAS (whose
    /// per-element sums depend on the call's shape) or the order of a reduction over parts. Such cuts come
    /// from the problem size alone, never from the thread count, so results are bit-identical on any number
    /// of threads; eight parts keep up to eight cores busy.
    /// </summary>
    public const int FixedParts = 8;

    /// <summary>Parts for <paramref name="count"/> items under <see cref="FixedParts"/>: min(count, 8), at least 1.</summary>
    public static int FixedPartsFor(int count) => Math.Clamp(count, 1, FixedParts);

    /// <summary>True on a thread currently running a body of a parallel loop or GEMM chunk; kernels then stay single-threaded.</summary>
    public static bool InsideParallelRegion => ParallelChunks.InRegion;

    public static void For(int count, Action<int> body)
    {
        int threads = Math.Min(ComputeContext.Current.Threads, count);
        if (threads <= 1 || ParallelChunks.InRegion)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        // Items are claimed dynamically (ParallelChunks): the calling thread starts at once and a pool
        // thread that wakes late takes what is left, where one fixed chunk per thread (Parallel.For)
        // left a core idle whenever the other thread was slow to start or its share was larger.
        int chunks = Math.Min(count, threads * ClaimsPerThread);
        if (chunks == count)
        {
            ParallelChunks.Run(threads, count, body);
            return;
        }
        ParallelChunks.Run(threads, chunks, c =>
        {
            int start = (int)((long)count * c / chunks), end = (int)((long)count * (c + 1) / chunks);
            for (int i = start; i < end; i++) body(i);
        });
    }
}
