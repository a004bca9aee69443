using System.Diagnostics;

namespace MediatorDiT.Evaluation.Performance;

/// <summary>
/// The process's resident-set high-water mark. On Linux it can be reset (writing 5 to
/// /proc/self/clear_refs), so the peak of one workload is measured apart from what ran before;
/// elsewhere the process-lifetime peak is all there is.
/// </summary>
internal static class PeakMemory
{
    /// <summary>Collects garbage and resets the high-water mark to the current resident set; false where unsupported.</summary>
    public static bool Reset()
    {
        // Aggressive: also returns the freed memory to the OS, so what ran before does not pad the next figure.
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>Peak resident bytes since the last successful <see cref="Reset"/> (or since start).</summary>
    public static long Peak() => ReadStatus("VmHWM:") ?? Process.GetCurrentProcess().PeakWorkingSet64;

    /// <summary>Resident bytes now.</summary>
    public static long Current() => ReadStatus("VmRSS:") ?? Process.GetCurrentProcess().WorkingSet64;

    private static long? ReadStatus(string key)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                {
                    var parts = line[key.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
                }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return null;
    }
}
