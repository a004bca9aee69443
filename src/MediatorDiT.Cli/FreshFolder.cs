using MediatorDiT.IO;

namespace MediatorDiT.Cli;

/// <summary>
/// An output folder checked for writing before any work, as <see cref="OutputFolder.EnsureWritable"/> does,
/// that remembers which folders it had to create: disposing removes those that are still empty, so a run
/// that fails before writing anything leaves no empty folder behind. Folders that existed are never removed.
/// </summary>
internal sealed class FreshFolder : IDisposable
{
    private readonly List<string> _created = [];

    private FreshFolder(string path) => Path = path;

    public string Path { get; }

    /// <param name="what">how an error names the folder, e.g. "output folder"</param>
    public static FreshFolder Create(string dir, string what)
    {
        var folder = new FreshFolder(dir);
        for (string? d = System.IO.Path.GetFullPath(dir); d is not null && !Directory.Exists(d); d = System.IO.Path.GetDirectoryName(d))
            folder._created.Add(d); // deepest first
        try
        {
            OutputFolder.EnsureWritable(dir, what);
        }
        catch
        {
            folder.Dispose();
            throw;
        }
        return folder;
    }

    public void Dispose()
    {
        foreach (string d in _created)
        {
            try
            {
                if (!Directory.Exists(d) || Directory.EnumerateFileSystemEntries(d).Any()) return;
                Directory.Delete(d);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return; // best effort: an empty folder left behind is not worth a second error
            }
        }
        _created.Clear();
    }
}
