using System.Diagnostics;

namespace MediatorDiT.Cli.Rendering;

/// <summary>
/// Draws progress on stderr: a one-line bar redrawn in place when stderr is a terminal, or plain
/// periodic lines (at most one every few seconds) when it is redirected or --no-progress is given.
/// </summary>
public sealed class ProgressRenderer : IDisposable
{
    private readonly bool _interactive;
    private readonly Stopwatch _sinceLine = Stopwatch.StartNew();
    private bool _barShown;
    private readonly object _gate = new();

    private ProgressRenderer(bool interactive) => _interactive = interactive;

    public static ProgressRenderer Create(bool plain) =>
        new(!plain && !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb"));

    public void Report(long done, long total, string detail, TimeSpan? remaining = null)
    {
        lock (_gate)
        {
            string eta = remaining is { } r ? $"  ETA {Format(r)}" : "";
            if (_interactive)
            {
                const int width = 30;
                int filled = total > 0 ? (int)(width * Math.Clamp((double)done / total, 0, 1)) : 0;
                string line = $"\r[{new string('#', filled)}{new string('-', width - filled)}] {done}/{total}  {detail}{eta}";
                int cols = SafeWindowWidth();
                if (line.Length > cols) line = line[..cols];
                Console.Error.Write(line.PadRight(Math.Min(cols, line.Length + 2)));
                _barShown = true;
            }
            else if (_sinceLine.Elapsed.TotalSeconds >= 5 || done == total)
            {
                Console.Error.WriteLine($"{done}/{total}  {detail}{eta}");
                _sinceLine.Restart();
            }
        }
    }

    public void Message(string text)
    {
        lock (_gate)
        {
            if (_barShown) Console.Error.WriteLine();
            _barShown = false;
            Console.Error.WriteLine(text);
        }
    }

    public void Done()
    {
        lock (_gate)
        {
            if (_barShown) Console.Error.WriteLine();
            _barShown = false;
        }
    }

    public void Dispose() => Done();

    private static int SafeWindowWidth()
    {
        try
        {
            return Math.Max(40, Console.WindowWidth - 1);
        }
        catch (IOException)
        {
            return 120;
        }
    }

    private static string Format(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : $"{t.Minutes}m{t.Seconds:D2}s";
}
