using System.Diagnostics;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Tensors;

/// <summary>The profiler's clocks: wall time counts a sleep, this thread's CPU time (Linux) does not.</summary>
public class OpProfilerTests
{
    [Fact]
    public void ThreadCpuClockIgnoresSleepingAndCountsWork()
    {
        if (!OperatingSystem.IsLinux()) return; // elsewhere the CPU clock falls back to wall time
        bool saved = OpProfiler.ThreadCpuTime;
        OpProfiler.ThreadCpuTime = true;
        try
        {
            long t0 = OpProfiler.Now();
            Thread.Sleep(200);
            double slept = (double)(OpProfiler.Now() - t0) / Stopwatch.Frequency;
            Assert.True(slept < 0.1, $"the thread CPU clock counted {slept:F3} s of a 0.2 s sleep");

            t0 = OpProfiler.Now();
            var wall = Stopwatch.StartNew();
            double x = 1;
            while (wall.ElapsedMilliseconds < 100) x = Math.Sqrt(x + 1);
            double busy = (double)(OpProfiler.Now() - t0) / Stopwatch.Frequency;
            Assert.True(busy > 0 && x > 0, "the thread CPU clock did not advance while working");
        }
        finally
        {
            OpProfiler.ThreadCpuTime = saved;
        }
    }
}
