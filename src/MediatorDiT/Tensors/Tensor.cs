namespace MediatorDiT.Tensors;

/// <summary>
/// A dense float32 tensor, row-major and contiguous. The data array may be longer than the logical
/// length (buffers are reused across shapes); always use <see cref="Span"/> or <see cref="Length"/>.
/// </summary>
public sealed class Tensor
{
    /// <summary>
    /// The backing array, which may be longer than <see cref="Length"/> (a reused buffer, or a longer array handed
    /// to the constructor); only its first <see cref="Length"/> elements belong to the tensor.
    /// </summary>
    public float[] Data { get; private set; }
    /// <summary>The dimensions, outermost first (e.g. [B, C, H, W]); do not modify the array.</summary>
    public int[] Shape { get; private set; }
    /// <summary>The element count, the product of <see cref="Shape"/>.</summary>
    public int Length { get; private set; }

    /// <summary>A zero-filled tensor of the given shape (arrays of 85,000 bytes or more are pinned).</summary>
    /// <param name="shape">The dimensions, outermost first.</param>
    /// <exception cref="ArgumentException">A dimension is negative or the element count exceeds one array.</exception>
    public Tensor(params int[] shape)
    {
        Shape = (int[])shape.Clone();
        Length = CountElements(shape);
        Data = Length == 0 ? [] : GC.AllocateArray<float>(Length, pinned: Length * 4 >= 85_000);
    }

    /// <summary>Wraps <paramref name="data"/> without copying; later writes to either are seen by both.</summary>
    /// <param name="data">The row-major values; may be longer than the shape needs.</param>
    /// <param name="shape">The dimensions, outermost first.</param>
    /// <exception cref="ArgumentException"><paramref name="data"/> is shorter than the shape's element count.</exception>
    public Tensor(float[] data, params int[] shape)
    {
        int n = CountElements(shape);
        if (data.Length < n)
            throw new ArgumentException($"data has {data.Length} elements but shape [{string.Join(", ", shape)}] needs {n}.");
        Data = data;
        Shape = (int[])shape.Clone();
        Length = n;
    }

    /// <summary>The number of dimensions.</summary>
    public int Rank => Shape.Length;
    /// <summary>The size of dimension <paramref name="axis"/>; negative axes count from the end (-1 is the last).</summary>
    /// <param name="axis">The dimension index, in [-Rank, Rank).</param>
    public int Dim(int axis) => Shape[axis < 0 ? Shape.Length + axis : axis];
    /// <summary>The tensor's <see cref="Length"/> elements, row-major.</summary>
    public Span<float> Span => Data.AsSpan(0, Length);
    /// <summary>The tensor's <see cref="Length"/> elements as memory (for asynchronous or deferred use).</summary>
    public Memory<float> Memory => Data.AsMemory(0, Length);

    /// <summary>A zero-filled tensor of the given shape; same as <c>new Tensor(shape)</c>.</summary>
    /// <param name="shape">The dimensions, outermost first.</param>
    public static Tensor Zeros(params int[] shape) => new(shape);

    /// <summary>Wraps <paramref name="data"/> without copying; same as <c>new Tensor(data, shape)</c>.</summary>
    /// <param name="data">The row-major values; may be longer than the shape needs.</param>
    /// <param name="shape">The dimensions, outermost first.</param>
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

    /// <summary>A copy with its own storage, exactly <see cref="Length"/> long.</summary>
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

    /// <summary>Sets every element to 0.</summary>
    public void Zero() => Span.Clear();

    /// <summary>Copies the elements of <paramref name="other"/> in row-major order; shapes may differ if the counts agree.</summary>
    /// <param name="other">The source tensor.</param>
    /// <exception cref="ArgumentException">The element counts differ.</exception>
    public void CopyFrom(Tensor other)
    {
        if (other.Length != Length)
            throw new ArgumentException($"cannot copy [{other.ShapeString}] into [{ShapeString}].");
        other.Span.CopyTo(Span);
    }

    /// <summary>True when <paramref name="other"/> has exactly the same dimensions.</summary>
    /// <param name="other">The tensor to compare with.</param>
    public bool SameShape(Tensor other) => Shape.AsSpan().SequenceEqual(other.Shape);

    /// <summary>The shape as text, e.g. "2, 4, 32, 32".</summary>
    public string ShapeString => string.Join(", ", Shape);

    /// <summary>"Tensor[" + shape + "]"; the values are not printed.</summary>
    public override string ToString() => $"Tensor[{ShapeString}]";

    /// <summary>The element count of <paramref name="shape"/>.</summary>
    /// <param name="shape">The dimensions.</param>
    /// <exception cref="ArgumentException">A dimension is negative or the count exceeds <see cref="Array.MaxLength"/>.</exception>
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
