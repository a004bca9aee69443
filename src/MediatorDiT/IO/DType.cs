namespace MediatorDiT.IO;

/// <summary>
/// Element types a stored tensor can have, named as in the safetensors header. PyTorch storages
/// map onto the same set (FloatStorage is F32, LongStorage is I64, ...).
/// </summary>
public enum DType
{
    Bool,
    U8,
    I8,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

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

    public static bool IsFloatingPoint(this DType dtype) =>
        dtype is DType.F16 or DType.BF16 or DType.F32 or DType.F64;

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
