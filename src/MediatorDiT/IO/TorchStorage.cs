namespace MediatorDiT.IO;

/// <summary>
/// One PyTorch storage: the flat, typed buffer tensors are views of, stored in a checkpoint zip as
/// <c>&lt;archive&gt;/data/&lt;Key&gt;</c>. Several tensors (a parameter in <c>model</c> and in
/// <c>ema</c>, or views of one buffer) can share a storage.
/// </summary>
internal sealed class TorchStorage
{
    private readonly Lazy<ReadOnlyMemory<byte>> _bytes;

    /// <summary>The zip entry name under <c>data/</c>.</summary>
    public string Key { get; }

    /// <summary>The element type named by the storage class (FloatStorage is F32; UntypedStorage is U8).</summary>
    public DType DType { get; }

    public long ElementCount { get; }

    /// <summary>ElementCount × element size little-endian bytes.</summary>
    public ReadOnlyMemory<byte> Bytes => _bytes.Value;

    /// <summary>Reads the storage afresh from the zip on each call (no caching), for streamed loading.</summary>
    internal Func<ReadOnlyMemory<byte>> Reread { get; }

    internal TorchStorage(string key, DType dtype, long elementCount, Func<ReadOnlyMemory<byte>> load)
    {
        Reread = load;
        Key = key;
        DType = dtype;
        ElementCount = elementCount;
        _bytes = new Lazy<ReadOnlyMemory<byte>>(load, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public override string ToString() => $"storage '{Key}' ({DType.SafeTensorsName()} x {ElementCount})";
}
