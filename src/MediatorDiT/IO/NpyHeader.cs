namespace MediatorDiT.IO;

/// <summary>
/// What a .npy header says about the array after it: element type and shape (C order, little-endian;
/// other layouts are rejected when the header is read). <see cref="DataOffset"/> is the header's
/// size in bytes, magic included, which is where the data starts.
/// </summary>
public sealed class NpyHeader
{
    /// <summary>The element type.</summary>
    public DType DType { get; }

    /// <summary>Sizes per axis; empty for a scalar.</summary>
    public int[] Shape { get; }

    /// <summary>The header's size in bytes, magic included: where the data starts.</summary>
    public long DataOffset { get; }

    /// <summary>A header for an array of <paramref name="dtype"/> and <paramref name="shape"/>.</summary>
    /// <param name="dtype">The element type.</param>
    /// <param name="shape">Sizes per axis (copied).</param>
    /// <param name="dataOffset">Where the data starts in the file.</param>
    /// <exception cref="ArgumentException">An axis is negative.</exception>
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

    /// <summary>Data bytes: element count x element size.</summary>
    public long ByteCount { get; }

    /// <summary>The shape as text, e.g. "60000, 28, 28".</summary>
    public string ShapeString => StoredTensor.FormatShape(Shape);

    /// <summary>The numpy descr and shape, e.g. "&lt;f4 (2, 3)".</summary>
    public override string ToString() => $"{NpyFormat.Descr(DType)} ({ShapeString})";
}
