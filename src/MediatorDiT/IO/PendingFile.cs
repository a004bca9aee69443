namespace MediatorDiT.IO;

/// <summary>
/// A file written over time (a streamed .npz) that appears under its name only once complete: it
/// is written to a temporary file in the same folder, flushed and renamed by <see cref="Commit"/>;
/// disposing without committing deletes it. <see cref="AtomicFile"/> does the same for contents
/// produced by one callback.
/// </summary>
internal sealed class PendingFile : IDisposable
{
    private readonly string _tempPath;
    private bool _done;

    public string Path { get; }
    public FileStream Stream { get; }

    public PendingFile(string path)
    {
        Path = path;
        _tempPath = System.IO.Path.GetFullPath(path) + ".tmp-" + Guid.NewGuid().ToString("N")[..12];
        try
        {
            Stream = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 1 << 20);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MediatorDiTException($"{path}: cannot be written ({ex.Message.TrimEnd('.')}).", ex);
        }
    }

    /// <summary>Flushes the temporary file to disk and moves it over <see cref="Path"/>.</summary>
    public void Commit()
    {
        if (_done) throw new InvalidOperationException("the file was already committed or abandoned.");
        try
        {
            Stream.Flush(flushToDisk: true);
            Stream.Dispose();
            File.Move(_tempPath, System.IO.Path.GetFullPath(Path), overwrite: true);
            _done = true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Dispose();
            throw new MediatorDiTException($"{Path}: cannot be written ({ex.Message.TrimEnd('.')}).", ex);
        }
    }

    /// <summary>Abandons the file unless committed: the temporary file is deleted.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        try { Stream.Dispose(); }
        catch (IOException) { }
        try { File.Delete(_tempPath); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
