using ILGPU;
using ILGPU.Runtime;

namespace MediatorDiT.Cuda.Models;

/// <summary>
/// A matrix product's operand: its fp32 values and, for a bf16 product, their bf16 copy at the same offsets (empty
/// where no copy was made: the product then rounds the fp32 values itself, or reads them in fp32).
/// </summary>
internal readonly record struct ProductOperand(ArrayView<float> F32, ArrayView<ushort> B16)
{
    /// <summary>Whether the bf16 copy is there.</summary>
    public bool HasBf16 => B16.Length > 0;

    /// <summary>The operand from element <paramref name="offset"/> on, in both formats.</summary>
    public ProductOperand From(long offset) => new(F32.SubView(offset), HasBf16 ? B16.SubView(offset) : B16);

    /// <summary>An fp32 operand without a bf16 copy.</summary>
    public static implicit operator ProductOperand(ArrayView<float> f32) => new(f32, default);

    /// <inheritdoc cref="op_Implicit(ArrayView{float})"/>
    public static implicit operator ProductOperand(ArrayView1D<float, Stride1D.Dense> f32) => new(f32, default);
}
