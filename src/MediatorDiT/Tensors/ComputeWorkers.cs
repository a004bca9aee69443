using System.Diagnostics;

namespace MediatorDiT.Tensors;

/// <summary>
/// Dedicated helper threads for <see cref="ParallelChunks"/>. A forward pass opens ~6 parallel regions
/// per layer, a few hundred microseconds apart. Queued to the thread pool, each region waited for a pool
/// thread to be dispatched, often longer than the region's first chunks took, so the caller ran much of
/// it alone: SiT-S/2 forward at batch 4 took 145 ms median on 2 threads this way, 128 ms with a dedicated
/// helper woken directly through its own event (same kernels, same machine, side by side). A helper can
/// also keep polling for a while after each region (<see cref="SpinMicroseconds"/>, off by default: on
/// the 2-core VM it gained nothing when idle and cost 15% while another program loaded the cores).
/// Regions submitted while every helper already has one waiting (two models running forwards on two
/// threads, say) fall back to the thread pool.
/// </summary>
internal static class ComputeWorkers
{
    /// <summary>
    /// How long an idle helper keeps polling for the next region before it sleeps (MDIT_COMPUTE_SPIN_US
    /// sets it; 0: sleep at once, as thread-pool threads do).
    /// </summary>
    internal static int SpinMicroseconds =
        int.TryParse(Environment.GetEnvironmentVariable("MDIT_COMPUTE_SPIN_US"), out int us) && us >= 0 ? us : 0;

    private static readonly object Gate = new();
    private static Worker[] _workers = [];

    /// <summary>
    /// Hands <paramref name="work"/> to up to <paramref name="helpers"/> idle helper threads (started on
    /// first use, at most <paramref name="helpers"/> in all for the largest request so far); returns how many took it.
    /// </summary>
    public static int Hand(IThreadPoolWorkItem work, int helpers)
    {
        var workers = Volatile.Read(ref _workers);
        if (workers.Length < helpers) workers = Grow(helpers);
        int handed = 0;
        for (int i = 0; i < workers.Length && handed < helpers; i++)
            if (workers[i].TryHand(work)) handed++;
        return handed;
    }

    private static Worker[] Grow(int count)
    {
        lock (Gate)
        {
            if (_workers.Length >= count) return _workers;
            var grown = new Worker[count];
            Array.Copy(_workers, grown, _workers.Length);
            for (int i = _workers.Length; i < count; i++) grown[i] = new Worker(i);
            Volatile.Write(ref _workers, grown);
            return grown;
        }
    }

    private sealed class Worker
    {
        private IThreadPoolWorkItem? _job;
        // 1 while the thread is blocked (or about to block) on _wake; submitters then signal it.
        private int _sleeping;
        private readonly ManualResetEventSlim _wake = new(false, 0);

        public Worker(int index)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"mdit compute {index + 1}" };
            thread.Start();
        }

        /// <summary>Takes the work unless another region is already waiting for this helper; wakes it if it sleeps.</summary>
        public bool TryHand(IThreadPoolWorkItem work)
        {
            if (Interlocked.CompareExchange(ref _job, work, null) != null) return false;
            // Full fence above, then read: either the helper sees _job before it sleeps, or we see it asleep.
            if (Volatile.Read(ref _sleeping) == 1) _wake.Set();
            return true;
        }

        private void Loop()
        {
            long idleSince = Stopwatch.GetTimestamp();
            while (true)
            {
                // Taking the job frees the slot at once: the caller may finish the region (every chunk done)
                // before this run returns, and hand the next region in the meantime.
                var job = Interlocked.Exchange(ref _job, null);
                if (job is not null)
                {
                    job.Execute();
                    idleSince = Stopwatch.GetTimestamp();
                    continue;
                }
                long idle = Stopwatch.GetTimestamp() - idleSince;
                long spinTicks = (long)SpinMicroseconds * Stopwatch.Frequency / 1_000_000;
                if (idle < spinTicks)
                {
                    // Poll; past the first 1% of the window offer the core to any other runnable thread (this
                    // process's caller or another program) each time. It still cost 15% while another program
                    // loaded the cores, which is why polling is off by default.
                    if (idle < spinTicks / 100 || !Thread.Yield()) Thread.SpinWait(20);
                    continue;
                }
                Interlocked.Exchange(ref _sleeping, 1);
                if (Volatile.Read(ref _job) is null) _wake.Wait();
                _wake.Reset();
                Interlocked.Exchange(ref _sleeping, 0);
                idleSince = Stopwatch.GetTimestamp();
            }
        }
    }
}
