using MediatorDiT.Evaluation;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Sampling;

namespace MediatorDiT.Tests.Evaluation;

public class SharedEvaluationCacheTests
{
    [Fact]
    public void OnlyAnExactlyEqualInputIsAnsweredFromTheCache()
    {
        var cache = new SharedEvaluationCache();
        var inner = new CountingFunction(new AffineVelocityField(2, 1));
        var stage = cache.Wrap(0, inner);
        var x = new Tensor([1, 2, 3, 4, 5, 6], 2, 3);
        var first = stage.Evaluate(x, [0.5f, 0.5f], [1, 2]);
        Assert.Equal([3.5f, 5.5f, 7.5f, 9.5f, 11.5f, 13.5f], first.Span.ToArray());
        var again = stage.Evaluate(x.Clone(), [0.5f, 0.5f], [1, 2]);
        Assert.Equal(1, inner.Calls);
        Assert.Equal(first.Span.ToArray(), again.Span.ToArray());

        // Callers get copies: writing into one answer leaves the remembered one intact.
        again.Span.Fill(-1);
        Assert.Equal(first.Span.ToArray(), stage.Evaluate(x, [0.5f, 0.5f], [1, 2]).Span.ToArray());
        Assert.Equal(1, inner.Calls);

        // One bit of the state, a time, a label, the shape or the stage differs: a network call each.
        var nudged = x.Clone();
        nudged.Span[5] = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(6f) + 1);
        stage.Evaluate(nudged, [0.5f, 0.5f], [1, 2]);
        stage.Evaluate(x, [0.5f, 0.25f], [1, 2]);
        stage.Evaluate(x, [0.5f, 0.5f], [1, 3]);
        stage.Evaluate(x.Reshape(2, 3, 1), [0.5f, 0.5f], [1, 2]);
        cache.Wrap(1, inner).Evaluate(x, [0.5f, 0.5f], [1, 2]);
        Assert.Equal(6, inner.Calls);
        Assert.Equal(6, cache.NetworkCalls);
        Assert.Equal(8, cache.Requests);
        Assert.Equal(6, cache.Count);

        cache.Clear();
        stage.Evaluate(x, [0.5f, 0.5f], [1, 2]);
        Assert.Equal(7, inner.Calls);
    }
}
