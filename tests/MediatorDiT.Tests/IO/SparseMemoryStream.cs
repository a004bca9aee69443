namespace MediatorDiT.Tests.IO;

/// <summary>
/// A seekable in-memory stream that stores only the 1 MiB blocks holding a non-zero byte; the rest
/// reads back as zeros. Lets a test write and read a zip of several gigabytes of mostly zero data.
/// </summary>
public sealed class SparseMemoryStream : Stream
{
    private const int BlockSize = 1 << 20;
    private readonly Dictionary<long, byte[]> _blocks = [];
    private long _length;
    private long _position;

    public long StoredBytes => (long)_blocks.Count * BlockSize;

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => true;
    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set => _position = value;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            long block = _position / BlockSize;
            int within = (int)(_position % BlockSize);
            int take = Math.Min(data.Length, BlockSize - within);
            ReadOnlySpan<byte> part = data[..take];
            if (_blocks.TryGetValue(block, out byte[]? stored))
                part.CopyTo(stored.AsSpan(within));
            else if (part.ContainsAnyExcept((byte)0))
            {
                stored = new byte[BlockSize];
                part.CopyTo(stored.AsSpan(within));
                _blocks[block] = stored;
            }
            _position += take;
            data = data[take..];
        }
        _length = Math.Max(_length, _position);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int total = (int)Math.Min(buffer.Length, Math.Max(0, _length - _position));
        Span<byte> output = buffer[..total];
        while (!output.IsEmpty)
        {
            long block = _position / BlockSize;
            int within = (int)(_position % BlockSize);
            int take = Math.Min(output.Length, BlockSize - within);
            if (_blocks.TryGetValue(block, out byte[]? stored)) stored.AsSpan(within, take).CopyTo(output);
            else output[..take].Clear();
            _position += take;
            output = output[take..];
        }
        return total;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        _position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => _length + offset,
        };
        return _position;
    }

    public override void SetLength(long value) => _length = value;

    public override void Flush() { }
}
