namespace MediatorDiT.IO;

/// <summary>Bytes produced afresh for each lease and dropped with it (a checkpoint record re-read from its zip).</summary>
internal sealed class RereadBytes : TensorByteSource
{
    private readonly Func<ReadOnlyMemory<byte>> _read;

    public RereadBytes(Func<ReadOnlyMemory<byte>> read) => _read = read;

    public override ByteLease Lease() => new MemoryLease(_read());

    private sealed class MemoryLease(ReadOnlyMemory<byte> bytes) : ByteLease
    {
        public override ReadOnlySpan<byte> Span => bytes.Span;
        public override void Dispose() { }
    }
}
