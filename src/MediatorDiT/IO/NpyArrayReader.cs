using System.Runtime.InteropServices;

namespace MediatorDiT.IO;

/// <summary>
/// Reads the elements of one .npz array in parts, in C order, so arrays larger than memory (50,000
/// images) can be consumed batch by batch. When the last element has been read the entry's CRC-32
/// is checked against the zip directory. The header must account for exactly the entry's declared
/// uncompressed size, and nothing past that size is ever inflated.
/// </summary>
public sealed class NpyArrayReader : IDisposable
{
    private readonly Stream _entry;
    private readonly string _source;
    private readonly uint _expectedCrc;
    private readonly long _declaredLength;
    private long _consumed;
    private uint _crc;

    /// <summary>The array's dtype and shape.</summary>
    public NpyHeader Header { get; }
    /// <summary>Elements read so far.</summary>
    public long ElementsRead { get; private set; }
    /// <summary>Elements not yet read.</summary>
    public long ElementsRemaining => Header.ElementCount - ElementsRead;

    /// <param name="entry">the zip entry's decompressing stream</param>
    /// <param name="source">names the array in messages</param>
    /// <param name="expectedCrc">the entry's CRC-32 in the zip directory</param>
    /// <param name="declaredLength">the entry's uncompressed size in the zip directory</param>
    internal NpyArrayReader(Stream entry, string source, uint expectedCrc, long declaredLength)
    {
        _entry = new CrcStream(entry, this);
        _source = source;
        _expectedCrc = expectedCrc;
        _declaredLength = declaredLength;
        Header = NpyFormat.ReadHeader(_entry, source);
        if (Header.DataOffset + Header.ByteCount != declaredLength)
            throw new MediatorDiTException(
                $"{source}: the .npy header declares {Header} ({Header.ByteCount} data bytes after a {Header.DataOffset}-byte header), but the zip directory gives the entry {declaredLength} bytes (the file is corrupt).");
        if (Header.ElementCount == 0) Finish();
    }

    /// <summary>Fills <paramref name="destination"/> with the next elements as little-endian bytes (a whole number of elements).</summary>
    public void ReadBytes(Span<byte> destination)
    {
        int size = Header.DType.ElementSize();
        if (destination.Length % size != 0)
            throw new MediatorDiTException($"{_source}: has {size}-byte elements, but {destination.Length} bytes were asked for, which is not a whole number of them.");
        long elements = destination.Length / size;
        if (elements > ElementsRemaining)
            throw new MediatorDiTException($"{_source}: {elements} more elements were asked for, but only {ElementsRemaining} of ({Header.ShapeString}) remain.");
        NpyFormat.ReadExactly(_entry, destination, _source, $"the array data ({Header.ByteCount} bytes)");
        ElementsRead += elements;
        if (ElementsRemaining == 0) Finish();
    }

    /// <summary>Fills <paramref name="destination"/> with the next float32 elements (the dtype must be F32).</summary>
    public void Read(Span<float> destination)
    {
        if (Header.DType != DType.F32 || !BitConverter.IsLittleEndian)
            throw new MediatorDiTException($"{_source}: has dtype {NpyFormat.Descr(Header.DType)}, so it cannot be read as float32 in parts; use ReadBytes or NpzReader.Read.");
        ReadBytes(MemoryMarshal.AsBytes(destination));
    }

    /// <summary>Reads whatever follows the data (nothing, normally) so the CRC covers the whole entry, then checks it.</summary>
    private void Finish()
    {
        byte[] rest = new byte[4096];
        try
        {
            while (_entry.Read(rest) > 0) { }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            throw new MediatorDiTException($"{_source}: cannot be read ({ex.Message.TrimEnd('.')}).", ex);
        }
        if (_crc != _expectedCrc)
            throw new MediatorDiTException($"{_source}: the zip entry fails its CRC check (stored 0x{_expectedCrc:X8}, computed 0x{_crc:X8}); the file is corrupt.");
    }

    /// <summary>Closes the entry's stream.</summary>
    public void Dispose() => _entry.Dispose();

    /// <summary>
    /// Passes reads through, adding the bytes to the owner's running CRC; asks the inflater for at most one
    /// byte beyond the entry's declared size, and fails if that byte exists.
    /// </summary>
    private sealed class CrcStream(Stream inner, NpyArrayReader owner) : Stream
    {
        public override int Read(Span<byte> buffer)
        {
            long allowed = owner._declaredLength - owner._consumed + 1;
            if (buffer.Length > allowed) buffer = buffer[..(int)allowed];
            int n;
            try
            {
                n = inner.Read(buffer);
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException)
            {
                throw new MediatorDiTException($"{owner._source}: cannot be read ({ex.Message.TrimEnd('.')}).", ex);
            }
            owner._consumed += n;
            if (owner._consumed > owner._declaredLength)
                throw new MediatorDiTException($"{owner._source}: the zip entry inflates to more than the {owner._declaredLength} bytes the zip directory declares (the file is corrupt).");
            owner._crc = Crc32.Append(owner._crc, buffer[..n]);
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
