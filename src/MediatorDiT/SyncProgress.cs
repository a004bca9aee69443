namespace MediatorDiT;

/// <summary>
/// Reports synchronously on the reporting thread (Progress&lt;T&gt; posts to a synchronization context or the
/// thread pool, so a step's report could arrive after the next step began).
/// </summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
