using System.Buffers.Binary;
using System.Runtime.InteropServices;
using MediatorDiT.Tensors;

namespace MediatorDiT.IO;

/// <summary>
/// A tensor as a file holds it: a dtype, a shape and its raw little-endian, row-major bytes. The
/// bytes are a <see cref="ReadOnlyMemory{T}"/> so they can be a slice of a larger buffer (a
/// PyTorch storage shared by several tensors) without copying, or stay in the file (a memory-mapped
/// safetensors file, see <see cref="SafeTensors.Map"/>): then <see cref="CopyTo"/> converts straight
/// from a view that is unmapped afterwards, and <see cref="Bytes"/> returns a fresh copy on each call.
/// </summary>
public sealed class StoredTensor
{
    private readonly Lazy<ReadOnlyMemory<byte>>? _bytes;
    private readonly TensorByteSource? _source;

    /// <summary>The element type of <see cref="Bytes"/>.</summary>
    public DType DType { get; }

    /// <summary>Sizes per axis; empty for a rank-0 (scalar) tensor.</summary>
    public int[] Shape { get; }

    /// <summary>Product of the shape (1 for rank 0, 0 when any axis is 0).</summary>
    public long ElementCount { get; }

    /// <summary>ElementCount × element size bytes, little-endian, row-major (for a tensor left in its file, a new copy per call).</summary>
    public ReadOnlyMemory<byte> Bytes
    {
        get
        {
            if (_bytes is not null) return _bytes.Value;
            using ByteLease lease = _source!.Lease();
            return lease.Span.ToArray();
        }
    }

    /// <summary>True when the bytes stay in the file and are read on each use (<see cref="SafeTensors.Map"/>).</summary>
    public bool IsInFile => _source is not null;

    /// <summary>ElementCount x element size.</summary>
    public long ByteCount => ElementCount * DType.ElementSize();

    /// <summary>A tensor over <paramref name="bytes"/> (not copied).</summary>
    /// <param name="dtype">The element type.</param>
    /// <param name="shape">Sizes per axis; empty for a scalar.</param>
    /// <param name="bytes">Exactly ElementCount x element size little-endian, row-major bytes.</param>
    /// <exception cref="ArgumentException">The byte count does not match, or an axis is negative.</exception>
    public StoredTensor(DType dtype, int[] shape, ReadOnlyMemory<byte> bytes)
        : this(dtype, shape)
    {
        if (bytes.Length != ByteCount)
            throw new ArgumentException($"a {dtype.SafeTensorsName()} tensor of shape [{FormatShape(shape)}] needs {ByteCount} bytes, got {bytes.Length}.");
        _bytes = new Lazy<ReadOnlyMemory<byte>>(bytes);
    }

    /// <summary>
    /// Bytes produced on first use (a checkpoint reader defers reading storages until a tensor is
    /// actually wanted); <paramref name="load"/> must return exactly <see cref="ByteCount"/> bytes.
    /// </summary>
    internal StoredTensor(DType dtype, int[] shape, Func<ReadOnlyMemory<byte>> load)
        : this(dtype, shape)
    {
        _bytes = new Lazy<ReadOnlyMemory<byte>>(() =>
        {
            ReadOnlyMemory<byte> bytes = load();
            if (bytes.Length != ByteCount)
                throw new InvalidOperationException($"deferred tensor [{ShapeString}] produced {bytes.Length} bytes instead of {ByteCount}.");
            return bytes;
        }, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Bytes left where they are (a mapped file region) and leased for each read.</summary>
    internal StoredTensor(DType dtype, int[] shape, TensorByteSource source)
        : this(dtype, shape)
    {
        _source = source;
    }

    private StoredTensor(DType dtype, int[] shape)
    {
        _ = dtype.ElementSize(); // rejects values outside the enum
        DType = dtype;
        Shape = (int[])shape.Clone();
        ElementCount = CountElements(Shape);
    }

    /// <summary>Element count of a shape; throws <see cref="ArgumentException"/> for negative axes.</summary>
    public static long CountElements(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"shape [{FormatShape(shape)}] has a negative axis.");
            n = checked(n * d);
        }
        return n;
    }

    internal static string FormatShape(ReadOnlySpan<int> shape)
    {
        var parts = new string[shape.Length];
        for (int i = 0; i < shape.Length; i++) parts[i] = shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        return string.Join(", ", parts);
    }

    /// <summary>The shape as text, e.g. "1152, 4, 2, 2".</summary>
    public string ShapeString => FormatShape(Shape);

    /// <summary>The values as a new float32 tensor; F64 and integers are rounded to the nearest float.</summary>
    public Tensor ToFloat()
    {
        if (ElementCount > Array.MaxLength)
            throw new MediatorDiTException($"a tensor of shape [{ShapeString}] has {ElementCount} elements, more than one float32 tensor can hold.");
        var tensor = new Tensor(Shape);
        CopyTo(tensor.Span);
        return tensor;
    }

    /// <summary>Converts the values to float32 into <paramref name="destination"/> (length ElementCount).</summary>
    public void CopyTo(Span<float> destination)
    {
        if (destination.Length != ElementCount)
            throw new ArgumentException($"destination has {destination.Length} elements but the tensor [{ShapeString}] has {ElementCount}.");
        if (_source is not null)
        {
            using ByteLease lease = _source.Lease();
            Convert(lease.Span, destination);
            return;
        }
        Convert(Bytes.Span, destination);
    }

    private void Convert(ReadOnlySpan<byte> b, Span<float> destination)
    {
        switch (DType)
        {
            case DType.F32:
                if (BitConverter.IsLittleEndian) MemoryMarshal.Cast<byte, float>(b).CopyTo(destination);
                else for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(b[(4 * i)..]);
                break;
            case DType.F16: HalfPrecision.HalfToSingle(b, destination); break;
            case DType.BF16: HalfPrecision.BFloat16ToSingle(b, destination); break;
            case DType.F64:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(b[(8 * i)..]);
                break;
            case DType.U64:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadUInt64LittleEndian(b[(8 * i)..]);
                break;
            default:
                for (int i = 0; i < destination.Length; i++) destination[i] = ReadInteger(b, i);
                break;
        }
    }

    /// <summary>The values of an integer or BOOL tensor as 64-bit integers (labels, timestep maps).</summary>
    public long[] ToInt64()
    {
        if (!DType.IsInteger())
            throw new MediatorDiTException($"a {DType.SafeTensorsName()} tensor cannot be read as integers; expected an integer dtype (I64, I32, I16, I8, U8, BOOL, ...).");
        if (ElementCount > Array.MaxLength)
            throw new MediatorDiTException($"a tensor of shape [{ShapeString}] has {ElementCount} elements, more than one array can hold.");
        var values = new long[ElementCount];
        ReadOnlySpan<byte> b = Bytes.Span;
        for (int i = 0; i < values.Length; i++)
        {
            if (DType == DType.U64)
            {
                ulong u = BinaryPrimitives.ReadUInt64LittleEndian(b[(8 * i)..]);
                if (u > long.MaxValue)
                    throw new MediatorDiTException($"a U64 tensor holds {u} at element {i}, which does not fit a 64-bit signed integer.");
                values[i] = (long)u;
            }
            else values[i] = ReadInteger(b, i);
        }
        return values;
    }

    private long ReadInteger(ReadOnlySpan<byte> b, int i) => DType switch
    {
        DType.Bool => b[i] != 0 ? 1 : 0,
        DType.U8 => b[i],
        DType.I8 => (sbyte)b[i],
        DType.I16 => BinaryPrimitives.ReadInt16LittleEndian(b[(2 * i)..]),
        DType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(b[(2 * i)..]),
        DType.I32 => BinaryPrimitives.ReadInt32LittleEndian(b[(4 * i)..]),
        DType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(b[(4 * i)..]),
        DType.I64 => BinaryPrimitives.ReadInt64LittleEndian(b[(8 * i)..]),
        _ => throw new InvalidOperationException($"{DType} is not an integer dtype."),
    };

    /// <summary>Stores the values of <paramref name="tensor"/> in its shape as F32, F16, BF16 or F64.</summary>
    /// <param name="tensor">The values.</param>
    /// <param name="dtype">The stored type; F16 and BF16 round to nearest even.</param>
    /// <exception cref="MediatorDiTException"><paramref name="dtype"/> is not a float type.</exception>
    public static StoredTensor FromFloat(Tensor tensor, DType dtype = DType.F32) =>
        FromFloat(tensor.Span, tensor.Shape, dtype);

    /// <summary>Stores float values as F32, F16, BF16 (both rounded to nearest even) or F64.</summary>
    public static StoredTensor FromFloat(ReadOnlySpan<float> data, int[] shape, DType dtype = DType.F32)
    {
        long n = CountElements(shape);
        if (data.Length != n)
            throw new ArgumentException($"{data.Length} values do not fill shape [{FormatShape(shape)}] ({n} elements).");
        var bytes = new byte[n * dtype.ElementSize()];
        switch (dtype)
        {
            case DType.F32:
                if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(data).CopyTo(bytes);
                else for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), data[i]);
                break;
            case DType.F16: HalfPrecision.SingleToHalf(data, bytes); break;
            case DType.BF16: HalfPrecision.SingleToBFloat16(data, bytes); break;
            case DType.F64:
                for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(8 * i), data[i]);
                break;
            default:
                throw new MediatorDiTException($"float values can be stored as F32, F16, BF16 or F64, not {dtype.SafeTensorsName()}.");
        }
        return new StoredTensor(dtype, shape, bytes);
    }

    /// <summary>Stores integers as I64 (the dtype PyTorch uses for labels and indices).</summary>
    public static StoredTensor FromInt64(long[] values, int[] shape)
    {
        long n = CountElements(shape);
        if (values.Length != n)
            throw new ArgumentException($"{values.Length} values do not fill shape [{FormatShape(shape)}] ({n} elements).");
        var bytes = new byte[n * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8 * i), values[i]);
        return new StoredTensor(DType.I64, shape, bytes);
    }

    /// <summary>The dtype and shape, e.g. "F32[8, 4]".</summary>
    public override string ToString() => $"{DType.SafeTensorsName()}[{ShapeString}]";
}
