using System.Runtime.InteropServices;

namespace MediatorDiT.IO;

/// <summary>
/// Appends the elements of one array of an .npz being written (see <see cref="NpzWriter.BeginArray"/>),
/// in C order, in as many calls as suit the caller (one image at a time, say). The element count
/// was fixed by the shape up front: writing past it is an error, and the archive can only be
/// completed once exactly that many elements have been written.
/// </summary>
public sealed class NpyArrayWriter
{
    private readonly Stream _data;
    private readonly string _source;
    private bool _closed;

    /// <summary>The array's name in the archive (without ".npy").</summary>
    public string Name { get; }
    /// <summary>The dtype and shape fixed when the array was begun.</summary>
    public NpyHeader Header { get; }
    /// <summary>Elements appended so far.</summary>
    public long ElementsWritten { get; private set; }
    /// <summary>Elements still to append.</summary>
    public long ElementsRemaining => Header.ElementCount - ElementsWritten;
    /// <summary>True once every element of the shape has been written.</summary>
    public bool IsComplete => ElementsWritten == Header.ElementCount;

    internal NpyArrayWriter(Stream data, string source, string name, NpyHeader header)
    {
        _data = data;
        _source = source;
        Name = name;
        Header = header;
    }

    /// <summary>Appends uint8 elements (the array's dtype must be U8).</summary>
    public void Write(ReadOnlySpan<byte> values)
    {
        RequireDType(DType.U8, "bytes");
        Append(values, values.Length);
    }

    /// <summary>Appends float32 elements (the array's dtype must be F32).</summary>
    public void Write(ReadOnlySpan<float> values)
    {
        RequireDType(DType.F32, "float32 values");
        Append(MemoryMarshal.AsBytes(values), values.Length);
    }

    /// <summary>Appends float64 elements (the array's dtype must be F64).</summary>
    public void Write(ReadOnlySpan<double> values)
    {
        RequireDType(DType.F64, "float64 values");
        Append(MemoryMarshal.AsBytes(values), values.Length);
    }

    /// <summary>Appends int64 elements (the array's dtype must be I64).</summary>
    public void Write(ReadOnlySpan<long> values)
    {
        RequireDType(DType.I64, "int64 values");
        Append(MemoryMarshal.AsBytes(values), values.Length);
    }

    /// <summary>Appends whole elements of any dtype given as little-endian bytes.</summary>
    public void WriteBytes(ReadOnlySpan<byte> littleEndian)
    {
        int size = Header.DType.ElementSize();
        if (littleEndian.Length % size != 0)
            throw new MediatorDiTException($"{_source}: array '{Name}' has {size}-byte elements, but {littleEndian.Length} bytes were given, which is not a whole number of them.");
        Append(littleEndian, littleEndian.Length / size);
    }

    internal void Close() => _closed = true;

    private void RequireDType(DType dtype, string what)
    {
        if (Header.DType != dtype)
            throw new MediatorDiTException($"{_source}: array '{Name}' has dtype {NpyFormat.Descr(Header.DType)}, so {what} cannot be written to it.");
        if (dtype.ElementSize() > 1 && !BitConverter.IsLittleEndian)
            throw new MediatorDiTException($"{_source}: typed .npy writing needs a little-endian machine; use WriteBytes with little-endian bytes.");
    }

    private void Append(ReadOnlySpan<byte> bytes, long elements)
    {
        if (_closed)
            throw new MediatorDiTException($"{_source}: array '{Name}' is closed (a later array was begun or the archive was completed or abandoned).");
        if (elements > ElementsRemaining)
            throw new MediatorDiTException($"{_source}: array '{Name}' of shape ({Header.ShapeString}) holds {Header.ElementCount} elements; {ElementsWritten} are written, so {elements} more do not fit.");
        try
        {
            _data.Write(bytes);
        }
        catch (IOException ex)
        {
            throw new MediatorDiTException($"{_source}: cannot be written ({ex.Message.TrimEnd('.')}).", ex);
        }
        ElementsWritten += elements;
    }
}
