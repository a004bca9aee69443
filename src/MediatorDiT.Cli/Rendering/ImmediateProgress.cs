namespace MediatorDiT.Cli.Rendering;

/// <summary>
/// An IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool), so
/// progress lines and a command's final output keep their order.
/// </summary>
public sealed class ImmediateProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
