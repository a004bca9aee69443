namespace MediatorDiT.Cli.Commands;

/// <summary>
/// How a rank of a multi-process run ends when another rank is lost: one "error: rank R: ..." line, then exit 1. The
/// communicator's watcher thread and the training thread may both see the same lost peer at once; the first to
/// report speaks for the process and the other only exits.
/// </summary>
internal sealed class RankFailureExit(int rank)
{
    private int _reported;

    public void Exit(string message)
    {
        if (Interlocked.Exchange(ref _reported, 1) == 0)
        {
            Console.Error.WriteLine($"error: rank {rank}: {message}");
            Console.Error.Flush();
        }
        Environment.Exit(1);
    }
}
