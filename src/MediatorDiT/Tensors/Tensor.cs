namespace MediatorDiT.Tensors;

/// <summary>
/// A dense float32 tensor, row-major and contiguous. The data array may be longer than the logical
/// length (buffers are reused across shapes); always use <see cref="Span"/> or <see cref="Length"/>.
/// </summary>
public sealed class Tensor
{
    public float[] Data { get; private set; }
    public int[] Shape { get; private set; }
    public int Length { get; private set; }

    public Tensor(params int[] shape)
    {
        Shape = (int[])shape.Clone();
        Length = CountElements(shape);
        Data = Length == 0 ? [] : GC.AllocateArray<float>(Length, pinned: Length * 4 >= 85_000);
    }

    public Tensor(float[] data, params int[] shape)
    {
        int n = CountElements(shape);
        if (data.Length < n)
            throw new ArgumentException($"data has {data.Length} elements but shape [{string.Join(", ", shape)}] needs {n}.");
        Data = data;
        Shape = (int[])shape.Clone();
        Length = n;
    }

    public int Rank => Shape.Length;
    public int Dim(int axis) => Shape[axis < 0 ? Shape.Length + axis : axis];
    public Span<float> Span => Data.AsSpan(0, Length);
    public Memory<float> Memory => Data.AsMemory(0, Length);

    public static Tensor Zeros(params int[] shape) => new(shape);

    public static Tensor FromArray(float[] data, params int[] shape) => new(data, shape);

    /// <summary>Same storage, new shape (element count must agree).</summary>
    public Tensor Reshape(params int[] shape)
    {
        if (CountElements(shape) != Length)
            throw new ArgumentException($"cannot reshape [{ShapeString}] to [{string.Join(", ", shape)}].");
        return new Tensor(Data, shape);
    }

    /// <summary>Makes this tensor hold the given shape, growing the storage only when needed.</summary>
    public void EnsureShape(params int[] shape)
    {
        int n = CountElements(shape);
        if (Data.Length < n) Data = GC.AllocateArray<float>(n, pinned: n * 4 >= 85_000);
        Shape = (int[])shape.Clone();
        Length = n;
    }

    public Tensor Clone() => new(Span.ToArray(), Shape);

    /// <summary>
    /// The parts stacked along their first dimension (batches (B_i, ...) -> (sum B_i, ...)); the parts must agree
    /// in the other dimensions. No parts give an empty tensor.
    /// </summary>
    public static Tensor ConcatBatches(IReadOnlyList<Tensor> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0) return new Tensor(0);
        var rest = parts[0].Shape[1..];
        foreach (var part in parts)
            if (!part.Shape.AsSpan(1).SequenceEqual(rest))
                throw new MediatorDiTException($"batches of shape [{parts[0].ShapeString}] and [{part.ShapeString}] cannot be stacked; all but the first dimension must agree.");
        var result = new Tensor([parts.Sum(t => t.Dim(0)), .. rest]);
        int offset = 0;
        foreach (var part in parts)
        {
            part.Span.CopyTo(result.Span[offset..]);
            offset += part.Length;
        }
        return result;
    }

    public void Zero() => Span.Clear();

    public void CopyFrom(Tensor other)
    {
        if (other.Length != Length)
            throw new ArgumentException($"cannot copy [{other.ShapeString}] into [{ShapeString}].");
        other.Span.CopyTo(Span);
    }

    public bool SameShape(Tensor other) => Shape.AsSpan().SequenceEqual(other.Shape);

    public string ShapeString => string.Join(", ", Shape);

    public override string ToString() => $"Tensor[{ShapeString}]";

    public static int CountElements(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException("negative dimension in shape.");
            n *= d;
        }
        if (n > Array.MaxLength) throw new ArgumentException("tensor too large for one array.");
        return (int)n;
    }
}
