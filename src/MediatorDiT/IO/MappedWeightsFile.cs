using System.IO.MemoryMappedFiles;

namespace MediatorDiT.IO;

/// <summary>A weights file mapped read-only into memory; tensors map views of it on demand (<see cref="MappedFileRegion"/>).</summary>
internal sealed class MappedWeightsFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private bool _disposed;

    public string Path { get; }

    public MappedWeightsFile(string path)
    {
        Path = path;
        _map = InputFile.Guard(path, () =>
            MemoryMappedFile.CreateFromFile(File.Open(path, FileMode.Open, FileAccess.Read, FileShare.Read), mapName: null, capacity: 0,
                MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false));
    }

    public MemoryMappedViewAccessor CreateView(long offset, int length)
    {
        if (_disposed)
            throw new MediatorDiTException($"{Path}: the weights file was already closed, so its tensors can no longer be read; read them before disposing the file.");
        return InputFile.Guard(Path, () => _map.CreateViewAccessor(offset, length, MemoryMappedFileAccess.Read));
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _map.Dispose();
    }
}
