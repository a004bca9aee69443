using ILGPU;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Blas;

/// <summary>
/// An <see cref="IDeviceGemm"/> that passes every product on to an inner one and, while <see cref="Recording"/>, counts
/// the calls of each distinct shape (alpha and beta included: beta 1 reads C), precision and output format. Recording one training
/// step gives its product mix, which the device check replays shape by shape to see where the products' time goes.
/// </summary>
internal sealed class RecordingGemm : IDeviceGemm
{
    private readonly IDeviceGemm _inner;
    private readonly List<RecordedProduct> _products = [];
    private readonly Dictionary<(GemmShape, DevicePrecision, bool), int> _index = [];

    /// <summary>Records the products passed to <paramref name="inner"/>, which this wrapper owns.</summary>
    public RecordingGemm(IDeviceGemm inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
    }

    /// <summary>Whether calls are counted now (off at first).</summary>
    public bool Recording { get; set; }

    /// <summary>The distinct products recorded, in the order of their first call, with their call counts.</summary>
    public IReadOnlyList<RecordedProduct> Products => _products;

    /// <summary>Forgets what was recorded.</summary>
    public void Clear()
    {
        _products.Clear();
        _index.Clear();
    }

    public void Sgemm(in GemmShape shape, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        Count(shape, DevicePrecision.Fp32);
        _inner.Sgemm(shape, a, b, c);
    }

    public void GemmBf16(in GemmShape shape, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<float> c)
    {
        Count(shape, DevicePrecision.Bf16);
        _inner.GemmBf16(shape, a, b, c);
    }

    public void GemmBf16(in GemmShape shape, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> c)
    {
        Count(shape, DevicePrecision.Bf16, bf16Output: true);
        _inner.GemmBf16(shape, a, b, c);
    }

    private void Count(in GemmShape shape, DevicePrecision precision, bool bf16Output = false)
    {
        if (!Recording) return;
        if (_index.TryGetValue((shape, precision, bf16Output), out int i)) _products[i] = _products[i] with { Calls = _products[i].Calls + 1 };
        else
        {
            _index[(shape, precision, bf16Output)] = _products.Count;
            _products.Add(new RecordedProduct(shape, precision, 1, bf16Output));
        }
    }

    public void Dispose() => _inner.Dispose();
}

/// <summary>
/// A product shape at a precision (bf16: bf16 operands, fp32 accumulation; the output fp32, or bf16 where
/// <see cref="Bf16Output"/>) and how often it was called.
/// </summary>
internal readonly record struct RecordedProduct(GemmShape Shape, DevicePrecision Precision, int Calls, bool Bf16Output = false)
{
    /// <summary>2 M N K per item, over the batch: one call's FLOPs.</summary>
    public double FlopsPerCall => 2.0 * Shape.M * Shape.N * Shape.K * Shape.Batch;
}
