using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The attention backward kernels on ILGPU's CPU accelerator, fed the CPU layers' own saved activations (a CPU
/// forward and backward first), against the gradients the CPU backward computed. The cores' products and softmax
/// sums run in another order than the CPU's vector code: 1e-3 relative, the gradient tolerance. The position
/// bias and depthwise parameter gradients add the CPU's own dS and tap sums in the CPU's order: bit for bit.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class AttentionBackwardKernelsTests(AcceleratorFixture device)
{
    private const double GradientTolerance = 1e-3;

    [Theory]
    [InlineData(2, 12, 2, 4)]
    [InlineData(1, 9, 3, 5)] // an odd head size and token count
    public void FullAttentionBackward_MatchesTheCpuLayer(int batch, int tokens, int heads, int headDim)
    {
        int dim = heads * headDim;
        var attention = new FullAttention("a.", dim, heads);
        CpuAttentionLayers.Run(attention, batch, tokens, dim, 71);
        using var qkv = device.Upload(attention.SavedQkv.Span.ToArray());
        using var o = device.Upload(attention.SavedHeadOutputs.Span.ToArray());
        using var dO = device.Upload(attention.HeadOutputGradient.Span.ToArray());
        using var lse = device.Upload(attention.SavedLogSumExp.Span.ToArray());
        using var delta = device.Accelerator.Allocate1D<float>(batch * heads * tokens);
        using var dqkv = device.Accelerator.Allocate1D<float>(batch * tokens * 3 * dim);
        device.Kernels.FullAttentionBackward(qkv.View, o.View, dO.View, lse.View, delta.View, dqkv.View, batch, tokens, heads, headDim,
            1f / MathF.Sqrt(headDim));
        GradientData.AssertClose(attention.QkvGradient.Span, device.Download(dqkv), GradientTolerance, "dqkv");
    }

    [Fact]
    public void FullAttentionBackward_LogSumExpIsTheNaturalLogOfTheScaledLogitsExpSum()
    {
        // The documented lse layout (B, H, N): row (b, h, i) = ln sum_j exp(s q_i.k_j), checked in double on the host.
        const int batch = 2, tokens = 5, heads = 2, headDim = 3, dim = heads * headDim;
        var attention = new FullAttention("a.", dim, heads);
        CpuAttentionLayers.Run(attention, batch, tokens, dim, 72);
        var qkv = attention.SavedQkv.Span;
        var lse = attention.SavedLogSumExp.Span;
        double scale = 1 / Math.Sqrt(headDim);
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < tokens; i++)
        {
            double sum = 0;
            for (int j = 0; j < tokens; j++)
            {
                double s = 0;
                for (int c = 0; c < headDim; c++)
                    s += (double)qkv[(b * tokens + i) * 3 * dim + h * headDim + c] * qkv[(b * tokens + j) * 3 * dim + dim + h * headDim + c];
                sum += Math.Exp(scale * s);
            }
            Assert.Equal(Math.Log(sum), lse[(b * heads + h) * tokens + i], 4);
        }
    }

    [Theory]
    [InlineData(2, 2, 4, 4, 4)]
    [InlineData(1, 3, 3, 5, 4)] // a 5x5 grid pooled to 2x2: overlapping bins
    public void MediatorCoreBackward_MatchesTheCpuLayer(int batch, int heads, int headDim, int grid, int mediators)
    {
        int dim = heads * headDim, tokens = grid * grid, n = mediators, medGrid = (int)Math.Round(Math.Sqrt(mediators));
        var attention = new MediatorAttention("a.", dim, heads, grid, mediators);
        CpuAttentionLayers.Run(attention, batch, tokens, dim, 73);
        var shape = new MediatorShape(heads, headDim, grid, grid, medGrid, 1f / MathF.Sqrt(headDim));
        using var qkv = device.Upload(attention.SavedQkv.Span.ToArray());
        using var t = device.Upload(attention.SavedTokens.Span.ToArray());
        using var a1 = device.Upload(attention.SavedA1.Span.ToArray());
        using var a2 = device.Upload(attention.SavedA2.Span.ToArray());
        using var vm = device.Upload(attention.SavedMediatorValues.Span.ToArray());
        using var taps = device.Upload(attention.SavedTaps.Span.ToArray());
        using var dO = device.Upload(attention.HeadOutputGradient.Span.ToArray());
        using var outputs = new MediatorBackwardOutputs(device.Accelerator, batch, tokens, heads, headDim, n);
        device.Kernels.MediatorCoreBackward(outputs.Views(qkv.View, t.View, a1.View, a2.View, vm.View, taps.View, dO.View), batch, shape);
        var gradients = outputs.Download();
        GradientData.AssertClose(attention.QkvGradient.Span, gradients[0], GradientTolerance, "dqkv");
        GradientData.AssertClose(attention.KeyLogitGradient.Span, gradients[1], GradientTolerance, "dS1");
        GradientData.AssertClose(attention.QueryLogitGradient.Span, gradients[2], GradientTolerance, "dS2");
        GradientData.AssertClose(attention.DepthwiseGradientsPerImage.Span, gradients[3], GradientTolerance, "dTaps");
    }

    [Theory]
    [InlineData(2, 2, 4, 4, 4)]
    [InlineData(3, 1, 4, 9, 9)] // a grid larger than the 7x7 maps: the resize spreads, and several outputs read one source
    public void MediatorParameterGradients_EqualTheCpuLayerBitForBit(int batch, int heads, int headDim, int grid, int mediators)
    {
        int dim = heads * headDim, tokens = grid * grid, medGrid = (int)Math.Round(Math.Sqrt(mediators)), map = heads * mediators * tokens;
        var attention = new MediatorAttention("a.", dim, heads, grid, mediators);
        CpuAttentionLayers.Run(attention, batch, tokens, dim, 74);
        using var dS1 = device.Upload(attention.KeyLogitGradient.Span.ToArray());
        using var dS2 = device.Upload(attention.QueryLogitGradient.Span.ToArray());
        using var dTaps = device.Upload(attention.DepthwiseGradientsPerImage.Span.ToArray());
        using var db1 = device.Accelerator.Allocate1D<float>(map);
        using var db2 = device.Accelerator.Allocate1D<float>(map);
        using var resized = device.Accelerator.Allocate1D<float>(map);
        using var resizeTaps = new DeviceResizeTaps(device.Accelerator, KernelSet.MediatorBiasSide, grid);
        Parameter[] biases = [attention.AnBias, attention.NaBias, attention.AhBias, attention.AwBias, attention.HaBias, attention.WaBias];
        var grads = biases.Select(p => device.Accelerator.Allocate1D<float>(p.Value.Length)).ToArray();
        using var dW = device.Accelerator.Allocate1D<float>(9 * dim);
        using var dB = device.Accelerator.Allocate1D<float>(dim);
        try
        {
            foreach (var g in grads) g.MemSetToZero();
            dW.MemSetToZero();
            dB.MemSetToZero();
            device.Kernels.MediatorBiasGradients(dS1.View, dS2.View, db1.View, db2.View, resized.View,
                new MediatorBiasGradientViews(grads[0].View, grads[1].View, grads[2].View, grads[3].View, grads[4].View, grads[5].View),
                resizeTaps, batch, heads, grid, medGrid);
            device.Kernels.DepthwiseParameterGradients(dTaps.View, dW.View, dB.View, dim, batch);
            for (int i = 0; i < biases.Length; i++) device.AssertSameBits(biases[i].Grad!.Span.ToArray(), device.Download(grads[i]));
            device.AssertSameBits(attention.DwcWeight.Grad!.Span.ToArray(), device.Download(dW));
            device.AssertSameBits(attention.DwcBias.Grad!.Span.ToArray(), device.Download(dB));
            Assert.Contains(biases[1].Grad!.Span.ToArray(), v => v != 0); // the chain reached na_bias
        }
        finally
        {
            foreach (var g in grads) g.Dispose();
        }
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class AttentionBackwardKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : AttentionBackwardKernelsTests(device);
