using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>Counts calls and rows passed through to another model function.</summary>
internal sealed class CountingFunction(IModelFunction inner) : IModelFunction
{
    public int Calls { get; private set; }
    public int Rows { get; private set; }

    public int RowsPerSample => inner.RowsPerSample;

    public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y)
    {
        Calls++;
        Rows += x.Dim(0);
        return inner.Evaluate(x, t, y);
    }
}
