namespace MediatorDiT.Training.Distributed;

/// <summary>One rank, this process: every collective is a copy.</summary>
public sealed class SingleProcessCommunicator : ICommunicator
{
    /// <summary>The shared instance (it holds nothing).</summary>
    public static SingleProcessCommunicator Instance { get; } = new();

    /// <inheritdoc/>
    public int Rank => 0;

    /// <inheritdoc/>
    public int Size => 1;

    /// <inheritdoc/>
    public string Name => "single process";

    /// <inheritdoc/>
    public void AllGather<T>(ReadOnlySpan<T> local, Span<T> gathered) where T : unmanaged
    {
        if (gathered.Length != local.Length)
            throw new ArgumentException($"gathered holds {gathered.Length} values; one rank's block is {local.Length}.", nameof(gathered));
        local.CopyTo(gathered);
    }

    /// <inheritdoc/>
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), root, "a single process has only rank 0.");
    }

    /// <inheritdoc/>
    public void Abort(int exitCode) => Environment.Exit(exitCode);

    /// <summary>Holds nothing.</summary>
    public void Dispose() { }
}
