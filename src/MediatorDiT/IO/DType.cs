namespace MediatorDiT.IO;

/// <summary>
/// Element types a stored tensor can have, named as in the safetensors header. PyTorch storages
/// map onto the same set (FloatStorage is F32, LongStorage is I64, ...).
/// </summary>
public enum DType
{
    /// <summary>Boolean, one byte per element (safetensors "BOOL").</summary>
    Bool,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Unsigned 16-bit integer.</summary>
    U16,
    /// <summary>IEEE 754 half precision.</summary>
    F16,
    /// <summary>bfloat16: float32's exponent with a 7-bit mantissa.</summary>
    BF16,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Unsigned 32-bit integer.</summary>
    U32,
    /// <summary>IEEE 754 single precision, what the models compute in.</summary>
    F32,
    /// <summary>IEEE 754 double precision.</summary>
    F64,
    /// <summary>Signed 64-bit integer (PyTorch's LongStorage; labels and indices).</summary>
    I64,
    /// <summary>Unsigned 64-bit integer.</summary>
    U64,
}

/// <summary>Sizes, names and kinds of <see cref="DType"/> values.</summary>
public static class DTypes
{
    /// <summary>Every supported dtype, in the order of the enum.</summary>
    public static IReadOnlyList<DType> All { get; } = Array.AsReadOnly(Enum.GetValues<DType>());

    /// <summary>Bytes per element; also the alignment the safetensors writer sorts by.</summary>
    public static int ElementSize(this DType dtype) => dtype switch
    {
        DType.Bool or DType.U8 or DType.I8 => 1,
        DType.I16 or DType.U16 or DType.F16 or DType.BF16 => 2,
        DType.I32 or DType.U32 or DType.F32 => 4,
        DType.F64 or DType.I64 or DType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype."),
    };

    /// <summary>The dtype string of the safetensors header ("F32", "BF16", "BOOL", ...).</summary>
    public static string SafeTensorsName(this DType dtype) => dtype switch
    {
        DType.Bool => "BOOL",
        _ => dtype.ToString(),
    };

    /// <summary>True for F16, BF16, F32 and F64.</summary>
    /// <param name="dtype">The element type.</param>
    public static bool IsFloatingPoint(this DType dtype) =>
        dtype is DType.F16 or DType.BF16 or DType.F32 or DType.F64;

    /// <summary>True for every non-floating-point type, <see cref="DType.Bool"/> included.</summary>
    /// <param name="dtype">The element type.</param>
    public static bool IsInteger(this DType dtype) => !dtype.IsFloatingPoint();

    /// <summary>Parses a safetensors dtype string; exact, case-sensitive match as the format requires.</summary>
    public static bool TryParseSafeTensorsName(string name, out DType dtype)
    {
        foreach (DType candidate in All)
        {
            if (candidate.SafeTensorsName() == name)
            {
                dtype = candidate;
                return true;
            }
        }
        dtype = default;
        return false;
    }
}
