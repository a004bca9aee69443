using System.IO.Compression;

namespace MediatorDiT.IO;

/// <summary>
/// Writes an .npz archive as numpy's np.savez does: a zip whose stored (uncompressed) entries
/// "&lt;name&gt;.npy" each hold one array. Arrays are streamed: <see cref="BeginArray"/> fixes name,
/// dtype and full shape (so the .npy header is final), then the elements are appended in as many
/// writes as the caller likes, e.g. one sampled image at a time into "arr_0" of shape
/// (N, H, W, 3) uint8 for the ADM evaluator, without the N images ever being in memory together.
/// Entry sizes are not known up front, so the zip library switches an entry to ZIP64 by itself
/// when it passes 4 GiB.
///
/// A file path is written atomically: the archive goes to a temporary file, and only
/// <see cref="Complete"/> (all arrays filled exactly) renames it into place. Disposing without
/// completing abandons the archive and leaves no file, so an interrupted sampling run never leaves
/// a truncated .npz behind.
/// </summary>
public sealed class NpzWriter : IDisposable
{
    private readonly PendingFile? _file;
    private readonly Stream _output;
    private readonly bool _leaveOpen;
    private readonly ZipArchive _zip;
    private readonly List<string> _names = [];
    private Stream? _entryStream;
    private NpyArrayWriter? _current;
    private bool _finished;

    /// <summary>The file (or the name given for the stream) that messages mention.</summary>
    public string Path { get; }

    /// <summary>The arrays begun so far, in order.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>Starts an archive that will appear at <paramref name="path"/> on <see cref="Complete"/>.</summary>
    public NpzWriter(string path)
    {
        Path = path;
        _file = new PendingFile(path);
        _output = _file.Stream;
        _zip = new ZipArchive(_output, ZipArchiveMode.Create, leaveOpen: true);
    }

    /// <summary>
    /// Writes the archive to <paramref name="output"/> (seekable streams give the most compact zip;
    /// nothing is atomic here). <paramref name="sourceName"/> names it in messages.
    /// </summary>
    public NpzWriter(Stream output, string sourceName, bool leaveOpen = false)
    {
        Path = sourceName;
        _output = output;
        _leaveOpen = leaveOpen;
        _zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
    }

    /// <summary>
    /// Starts the array <paramref name="name"/> (entry "name.npy") of the given dtype and shape and
    /// writes its header; the previous array must be complete.
    /// </summary>
    public NpyArrayWriter BeginArray(string name, DType dtype, params int[] shape)
    {
        EnsureOpen();
        if (string.IsNullOrEmpty(name))
            throw new MediatorDiTException($"{Path}: an array needs a non-empty name.");
        if (_names.Contains(name))
            throw new MediatorDiTException($"{Path}: already has an array '{name}'.");
        foreach (int d in shape)
            if (d < 0) throw new MediatorDiTException($"{Path}: array '{name}' cannot have the shape ({StoredTensor.FormatShape(shape)}) with a negative axis.");
        byte[] header = NpyFormat.Header(dtype, shape);
        CloseCurrent();

        try
        {
            ZipArchiveEntry entry = _zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression);
            _entryStream = entry.Open();
            _entryStream.Write(header);
        }
        catch (IOException ex)
        {
            throw new MediatorDiTException($"{Path}: cannot be written ({ex.Message.TrimEnd('.')}).", ex);
        }
        _names.Add(name);
        _current = new NpyArrayWriter(_entryStream, Path, name, new NpyHeader(dtype, shape, header.Length));
        return _current;
    }

    /// <summary>Writes a whole array held in memory.</summary>
    public void WriteArray(string name, StoredTensor array)
    {
        NpyArrayWriter writer = BeginArray(name, array.DType, array.Shape);
        writer.WriteBytes(array.Bytes.Span);
    }

    /// <summary>
    /// Checks that the last array got all its elements, finishes the zip and, for a file, moves it
    /// into place. Throws, leaving no file, when an array is short.
    /// </summary>
    public void Complete()
    {
        EnsureOpen();
        if (_current is { IsComplete: false } short_)
        {
            Abandon();
            throw new MediatorDiTException($"{Path}: array '{short_.Name}' of shape ({short_.Header.ShapeString}) received {short_.ElementsWritten} of its {short_.Header.ElementCount} elements, so the archive was not written.");
        }
        try
        {
            CloseCurrent();
            _zip.Dispose();
            if (_file is not null) _file.Commit();
            else
            {
                _output.Flush();
                if (!_leaveOpen) _output.Dispose();
            }
        }
        catch (IOException ex)
        {
            Abandon();
            throw new MediatorDiTException($"{Path}: cannot be written ({ex.Message.TrimEnd('.')}).", ex);
        }
        finally
        {
            _finished = true;
        }
    }

    /// <summary>Abandons the archive unless <see cref="Complete"/> succeeded: a file path is left untouched.</summary>
    public void Dispose()
    {
        if (!_finished) Abandon();
    }

    private void CloseCurrent()
    {
        if (_current is null) return;
        if (!_current.IsComplete)
            throw new MediatorDiTException($"{Path}: array '{_current.Name}' of shape ({_current.Header.ShapeString}) has {_current.ElementsWritten} of its {_current.Header.ElementCount} elements; finish it before beginning another.");
        _current.Close();
        _entryStream!.Dispose();
        _entryStream = null;
        _current = null;
    }

    private void Abandon()
    {
        _finished = true;
        _current?.Close();
        // Only the temporary file matters now; errors while tearing the zip down are of no interest.
        try { _entryStream?.Dispose(); } catch (Exception ex) when (ex is IOException or InvalidOperationException or NotSupportedException) { }
        try { _zip.Dispose(); } catch (Exception ex) when (ex is IOException or InvalidOperationException or NotSupportedException) { }
        if (_file is not null) _file.Dispose();
        else if (!_leaveOpen) _output.Dispose();
    }

    private void EnsureOpen()
    {
        if (_finished)
            throw new MediatorDiTException($"{Path}: the archive was already completed or abandoned.");
    }
}
