namespace MediatorDiT.IO;

/// <summary>
/// Writes a file so that readers see either the old contents or the complete new ones, never a
/// half-written file: the bytes go to a temporary file in the same folder (same volume, so the
/// final rename is atomic), are flushed to disk, and the temporary file is then moved over the target.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> writeContents)
    {
        string fullPath = Path.GetFullPath(path);
        string tempPath = fullPath + ".tmp-" + Guid.NewGuid().ToString("N")[..12];
        try
        {
            using (var stream = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                writeContents(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tempPath, fullPath, overwrite: true);
        }
        catch (Exception ex)
        {
            TryDelete(tempPath);
            if (ex is IOException or UnauthorizedAccessException)
                throw new MediatorDiTException($"{path}: cannot be written ({ex.Message.TrimEnd('.')}).", ex);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
