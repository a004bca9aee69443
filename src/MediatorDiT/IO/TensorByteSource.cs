namespace MediatorDiT.IO;

/// <summary>
/// Where a stored tensor's bytes live when they are not held in memory: a region of a memory-mapped
/// file, or a record of a checkpoint zip. <see cref="Lease"/> makes the bytes readable only for the
/// lease's lifetime, so a loader can convert one tensor after another into a model without the file
/// ever being resident in the process all at once.
/// </summary>
internal abstract class TensorByteSource
{
    /// <summary>Exactly the tensor's bytes, valid until the lease is disposed.</summary>
    public abstract ByteLease Lease();
}

/// <summary>Bytes on loan from a <see cref="TensorByteSource"/>: read <see cref="Span"/>, then dispose.</summary>
internal abstract class ByteLease : IDisposable
{
    public abstract ReadOnlySpan<byte> Span { get; }

    public abstract void Dispose();
}
