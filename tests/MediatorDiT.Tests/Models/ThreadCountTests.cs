using MediatorDiT.Evaluation.Performance;
using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Models;

/// <summary>
/// A whole model's forward and backward give the same bits on 1 and 2 threads: the MLP chain splits its
/// rows differently per thread count (256 rows: 4 blocks of 64 on one thread, 8 of 32 on two), its weights
/// are packed once per forward, the adaLN product splits its columns on two threads, and the attention
/// loops claim (image, head) items dynamically.
/// </summary>
public class ThreadCountTests
{
    private static (float[] Output, float[][] Grads) Run(ModelConfig config, int threads)
    {
        var saved = ComputeContext.Raw;
        ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
        try
        {
            var work = new ModelWorkload(config, batch: 4, seed: 7);
            var output = work.Model.Forward(RandomInput(config, 4), [0.1f, 0.4f, 0.7f, 0.9f], [0, 1, 2, 3]);
            work.Model.ZeroGrad();
            var dOut = new Tensor(output.Shape);
            new RandomSource(9).FillGaussian(dOut.Span);
            work.Model.Backward(dOut);
            var grads = work.Model.Parameters.Where(p => p.Trainable).Select(p => p.Grad!.Span.ToArray()).ToArray();
            return (output.Span.ToArray(), grads);
        }
        finally { ComputeContext.Raw = saved; }
    }

    private static Tensor RandomInput(ModelConfig config, int batch)
    {
        var x = new Tensor(batch, config.InChannels, config.InputSize, config.InputSize);
        new RandomSource(8).FillGaussian(x.Span);
        return x;
    }

    [Theory]
    [InlineData(AttentionKind.Full, 0)]
    [InlineData(AttentionKind.Mediator, 16)]
    public void ForwardAndBackward_AreBitIdenticalOnOneAndTwoThreads(AttentionKind kind, int mediators)
    {
        // 8x8 tokens x 4 images = 256 rows; hidden 64 in 2 heads (hd 32), MLP 256 wide, 2 blocks.
        var config = new ModelConfig
        {
            InputSize = 16, PatchSize = 2, InChannels = 4, HiddenSize = 64, Depth = 2, NumHeads = 2, NumClasses = 4,
            Attention = kind, MediatorNum = Math.Max(1, mediators),
        }.Validate();
        var one = Run(config, 1);
        var two = Run(config, 2);
        Assert.Equal(one.Output, two.Output);
        Assert.Equal(one.Grads.Length, two.Grads.Length);
        for (int i = 0; i < one.Grads.Length; i++) Assert.Equal(one.Grads[i], two.Grads[i]);
        Assert.Contains(one.Output, v => v != 0); // random weights: a real output, not the zero-init one
    }
}
