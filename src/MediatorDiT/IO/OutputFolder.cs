namespace MediatorDiT.IO;

/// <summary>Checks, before any work starts, that a folder the run will write into can be written.</summary>
public static class OutputFolder
{
    /// <summary>Creates <paramref name="dir"/> if needed and writes and deletes a probe file in it.</summary>
    /// <param name="dir">the folder</param>
    /// <param name="what">how the message names the folder, e.g. "run folder"</param>
    /// <exception cref="MediatorDiTException">The folder cannot be created or written.</exception>
    public static void EnsureWritable(string dir, string what)
    {
        try
        {
            Directory.CreateDirectory(dir);
            string probe = Path.Combine(dir, $".write-test-{Environment.ProcessId}");
            File.WriteAllText(probe, "ok");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MediatorDiTException($"the {what} '{dir}' is not writable ({e.Message}).");
        }
    }
}
