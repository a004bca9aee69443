namespace MediatorDiT.IO;

/// <summary>
/// What a .npy header says about the array after it: element type and shape (C order, little-endian;
/// other layouts are rejected when the header is read). <see cref="DataOffset"/> is the header's
/// size in bytes, magic included, which is where the data starts.
/// </summary>
public sealed class NpyHeader
{
    public DType DType { get; }

    /// <summary>Sizes per axis; empty for a scalar.</summary>
    public int[] Shape { get; }

    public long DataOffset { get; }

    public NpyHeader(DType dtype, int[] shape, long dataOffset = 0)
    {
        DType = dtype;
        Shape = (int[])shape.Clone();
        DataOffset = dataOffset;
        ElementCount = StoredTensor.CountElements(Shape);
        ByteCount = checked(ElementCount * dtype.ElementSize());
    }

    /// <summary>Product of the shape (1 for a scalar).</summary>
    public long ElementCount { get; }

    public long ByteCount { get; }

    public string ShapeString => StoredTensor.FormatShape(Shape);

    public override string ToString() => $"{NpyFormat.Descr(DType)} ({ShapeString})";
}
