namespace MediatorDiT.Tests.IO;

/// <summary>A fresh folder under the system temp dir, deleted on dispose; tests write corrupted copies here.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("mediatordit-io-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Copies a fixture here (fixtures are read-only and must never be modified).</summary>
    public string CopyFixture(string fixtureName, string? newName = null)
    {
        string target = File(newName ?? fixtureName);
        System.IO.File.Copy(Fixtures.PathOf(fixtureName), target);
        new FileInfo(target).IsReadOnly = false;
        return target;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
