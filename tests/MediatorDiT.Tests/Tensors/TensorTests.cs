using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Tensors;

public class TensorTests
{
    [Fact]
    public void BatchesStackAlongTheFirstDimension()
    {
        var a = Tensor.FromArray([1, 2, 3, 4], 2, 2);
        var b = Tensor.FromArray([5, 6], 1, 2);
        var both = Tensor.ConcatBatches([a, b]);
        Assert.Equal([3, 2], both.Shape);
        Assert.Equal([1f, 2, 3, 4, 5, 6], both.Span.ToArray());
        Assert.Equal(0, Tensor.ConcatBatches([]).Length);
        var e = Assert.Throws<MediatorDiTException>(() => Tensor.ConcatBatches([a, Tensor.FromArray([1, 2, 3], 1, 3)]));
        Assert.Equal("batches of shape [2, 2] and [1, 3] cannot be stacked; all but the first dimension must agree.", e.Message);
    }
}
