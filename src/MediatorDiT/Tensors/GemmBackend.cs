namespace MediatorDiT.Tensors;

/// <summary>Which implementation <see cref="Gemm"/> runs.</summary>
public enum GemmBackend
{
    /// <summary>Per shape: OpenBLAS where it measurably wins, the managed kernel otherwise.</summary>
    Auto,
    /// <summary>The packed SIMD kernel in <see cref="ManagedGemm"/>.</summary>
    Managed,
    /// <summary>The system OpenBLAS (falls back to Managed when the library is not installed).</summary>
    OpenBlas,
    /// <summary>The triple loop in <see cref="ReferenceGemm"/>; for debugging only.</summary>
    Reference,
}
