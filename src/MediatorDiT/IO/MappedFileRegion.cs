using System.IO.MemoryMappedFiles;

namespace MediatorDiT.IO;

/// <summary>
/// A byte range of a memory-mapped file. Each lease maps a view of just that range and unmaps it on
/// dispose, so the pages it touched stop counting against the process once the tensor is converted
/// (a view kept for the whole load would make the file resident next to the model's own copy).
/// </summary>
internal sealed class MappedFileRegion : TensorByteSource
{
    private readonly MappedWeightsFile _file;
    private readonly long _offset;
    private readonly int _length;

    public MappedFileRegion(MappedWeightsFile file, long offset, int length)
    {
        _file = file;
        _offset = offset;
        _length = length;
    }

    public override ByteLease Lease() => _length == 0 ? EmptyLease.Instance : new ViewLease(_file, _offset, _length);

    private sealed class EmptyLease : ByteLease
    {
        public static readonly EmptyLease Instance = new();
        public override ReadOnlySpan<byte> Span => [];
        public override void Dispose() { }
    }

    private sealed unsafe class ViewLease : ByteLease
    {
        private readonly MemoryMappedViewAccessor _view;
        private readonly byte* _pointer;
        private readonly int _length;
        private bool _disposed;

        public ViewLease(MappedWeightsFile file, long offset, int length)
        {
            _view = file.CreateView(offset, length);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            // Views start on a page boundary; PointerOffset is where the asked-for offset falls.
            _pointer = p + _view.PointerOffset;
            _length = length;
        }

        public override ReadOnlySpan<byte> Span
        {
            get
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                return new ReadOnlySpan<byte>(_pointer, _length);
            }
        }

        public override void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
    }
}
