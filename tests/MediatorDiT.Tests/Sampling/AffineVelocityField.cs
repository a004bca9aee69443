using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Sampling;

/// <summary>v(x, t) = Slope x + Offset + t: a cheap field whose sampler steps can be written out by hand.</summary>
internal sealed class AffineVelocityField(float slope, float offset) : IModelFunction
{
    public int RowsPerSample => 1;

    public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y)
    {
        var v = new Tensor(x.Shape);
        int per = x.Length / x.Dim(0);
        for (int i = 0; i < x.Length; i++) v.Span[i] = slope * x.Span[i] + offset + t[i / per];
        return v;
    }

    public double At(double x, double t) => slope * x + offset + t;
}
