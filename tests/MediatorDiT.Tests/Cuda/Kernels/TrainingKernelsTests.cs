using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Diffusion;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;
using MediatorDiT.Training;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The training step's kernels on ILGPU's CPU accelerator against the CPU trainer's code. Element-wise results (the
/// loss gradient, the EMA, the clipped gradient given the same scale) are the CPU's bits; the reductions (a loss sum
/// in double, the norm in fp32) add in a tree instead of in order: 1e-6 and 1e-5 relative.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class TrainingKernelsTests(AcceleratorFixture device)
{
    [Theory]
    [InlineData(PathType.Linear, PredictionType.Velocity, LossWeighting.None)]
    [InlineData(PathType.GVP, PredictionType.Noise, LossWeighting.Velocity)]
    [InlineData(PathType.VP, PredictionType.Score, LossWeighting.Likelihood)]
    public void TrainingLoss_MatchesTheTransport(PathType path, PredictionType prediction, LossWeighting weighting)
    {
        // Images of c x 5 x 5 values, more than the reduction group's threads (16 on 4-lane warps: c = 2; 256 on a
        // CUDA-shaped accelerator: c = 12) and not a multiple of them: the threads' strides end unevenly.
        const int batch = 3;
        int channels = device.Kernels.ReductionGroupSize / 25 + 2, per = channels * 25;
        var transport = new Transport(path, prediction, weighting);
        float[] t = [0.2f, 0.55f, 0.9f];
        var p = new Tensor(KernelData.Uniform(batch * per, 101, -2f, 2f), batch, channels, 5, 5);
        var x0 = new Tensor(KernelData.Uniform(batch * per, 102, -2f, 2f), batch, channels, 5, 5);
        var x1 = new Tensor(KernelData.Uniform(batch * per, 103, -1f, 1f), batch, channels, 5, 5);
        var gradient = new Tensor(batch, channels, 5, 5);
        var losses = transport.TrainingLoss(p, t, x0, x1, gradient);
        var (coefficients, mode) = TrainingKernels.LossCoefficientsFor(transport, t, per);
        using var dp = device.Upload(p.Span.ToArray());
        using var d0 = device.Upload(x0.Span.ToArray());
        using var d1 = device.Upload(x1.Span.ToArray());
        using var dc = device.Accelerator.Allocate1D(coefficients);
        using var dg = device.Accelerator.Allocate1D<float>(batch * per);
        using var dl = device.Accelerator.Allocate1D<float>(batch);
        Assert.True(device.Kernels.ReductionGroupSize >= 2 && per % device.Kernels.ReductionGroupSize != 0); // the group's tree runs
        device.Kernels.TrainingLoss(dp.View, d0.View, d1.View, dc.View, mode, dg.View, dl.View);
        device.AssertSameBits(gradient.Span.ToArray(), device.Download(dg));
        KernelData.AssertRelative(losses, device.Download(dl), 1e-6);
    }

    [Theory]
    [InlineData(1.0)] // the norm is far above: clipped
    [InlineData(0.0)] // no clipping
    [InlineData(1e9)] // a limit above the norm: unchanged
    public void GradientNormAndClip_MatchesTheCpuTrainer(double maxNorm)
    {
        // Three parameters' gradients in one flat buffer, longer than one norm chunk so the partials are summed.
        int[] lengths = [KernelSet.NormChunk + 37, 300, 5];
        var parameters = lengths.Select((n, i) => KernelData.Uniform(n, 111 + i, -0.1f, 0.1f)).ToArray();
        double norm = Math.Sqrt(parameters.Sum(g => (double)TensorPrimitives.SumOfSquares(g)));
        var flat = parameters.SelectMany(g => g).ToArray();
        var expected = (float[])flat.Clone();
        if (maxNorm > 0 && norm > maxNorm) TensorPrimitives.Multiply(expected, (float)(maxNorm / (norm + 1e-6)), expected);
        using var dg = device.Upload(flat);
        using var partials = device.Accelerator.Allocate1D<float>(KernelSet.NormPartials(flat.Length));
        using var result = device.Accelerator.Allocate1D<float>(2);
        device.Kernels.GradientNormAndClip(dg.View, partials.View, result.View, maxNorm);
        var (deviceNorm, scale) = (device.Download(result)[0], device.Download(result)[1]);
        Assert.Equal(norm, deviceNorm, norm * 1e-5);
        if (maxNorm > 0 && norm > maxNorm)
        {
            Assert.Equal(maxNorm / (norm + 1e-6), scale, 1e-5 * scale);
            KernelData.AssertRelative(expected, device.Download(dg), 1e-5);
        }
        else
        {
            Assert.Equal(1f, scale);
            device.AssertSameBits(expected, device.Download(dg));
        }
    }

    [Theory]
    [InlineData(1, 0.0)]
    [InlineData(255, 0.0)]
    [InlineData(41_231, 0.0)] // SiT-XL/2's count: more partials than the group has threads, and an odd tail
    [InlineData(41_231, 1.0)] // clipped: the norm is about 1.4
    public void TheNormOfManyPartials_IsTheirSumsRoot(int count, double maxNorm)
    {
        var partials = KernelData.Uniform(count, 140 + count, 0f, 1e-4f);
        double total = partials.Sum(p => (double)p), norm = Math.Sqrt(total);
        using var dp = device.Upload(partials);
        using var result = device.Accelerator.Allocate1D<float>(2);
        device.Kernels.NormAndClipScale(dp.View, result.View, count, maxNorm);
        var r = device.Download(result);
        Assert.Equal(norm, r[0], norm * 1e-5); // fp32 sums of positive terms: well inside 1e-5
        if (maxNorm > 0)
        {
            Assert.True(norm > maxNorm, "the clipped case must clip");
            Assert.Equal(maxNorm / (norm + 1e-6), r[1], 1e-6);
        }
        else Assert.Equal(1f, r[1]);
    }

    private sealed class Weights(params Parameter[] parameters) : IParameterSet
    {
        public IReadOnlyList<Parameter> Parameters { get; } = parameters;
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)] // fp32: no bf16 copy
    public void OptimizerUpdate_ThreeSteps_AreTheCpuAdamWThenEmaThenRoundingsBits(bool decays, bool bf16)
    {
        // 41 parameters trained (AdamW, then the EMA of the new value, then its bf16 copy) and 9 not trained this step
        // (the EMA and the copy only), as the CPU optimiser, Ema.Update and the rounding leave them.
        const double decay = 0.9999;
        const int trained = 41, frozen = 9;
        var model = new Parameter("w", [trained]);
        var other = new Parameter("f", [frozen]);
        var ema = new Parameter("w", [trained]);
        var otherEma = new Parameter("f", [frozen]);
        KernelData.Uniform(trained, 121, -1f, 1f).CopyTo(model.Value.Span);
        KernelData.Uniform(frozen, 123, -1f, 1f).CopyTo(other.Value.Span);
        KernelData.Uniform(trained, 122, -1f, 1f).CopyTo(ema.Value.Span);
        KernelData.Uniform(frozen, 124, -1f, 1f).CopyTo(otherEma.Value.Span);
        var m = new float[trained];
        var v = new float[trained];
        using var dp = device.Upload([.. model.Value.Span, .. other.Value.Span]);
        using var de = device.Upload([.. ema.Value.Span, .. otherEma.Value.Span]);
        using var dm = device.Upload(new float[trained]);
        using var dv = device.Upload(new float[trained]);
        using var p16 = device.Accelerator.Allocate1D<ushort>(bf16 ? trained + frozen : 0);
        ArrayView<ushort> Copy(int start, int length) => bf16 ? p16.View.SubView(start, length) : default;
        for (int step = 1; step <= 3; step++)
        {
            var g = KernelData.Uniform(trained, 10 + step, -0.1f, 0.1f);
            double lr = 1e-3, b1 = 0.9, b2 = 0.999;
            var s = new AdamWScalars((float)(1 - lr * 0.01), decays, (float)b1, (float)b2, (float)(1 - b1), (float)(1 - b2),
                (float)Math.Sqrt(1 - Math.Pow(b2, step)), 1e-8f, (float)(lr / (1 - Math.Pow(b1, step))));
            AdamWKernel.Update(model.Value.Span, g, m, v, s);
            Ema.Update(new Weights(ema, otherEma), new Weights(model, other), decay);
            using var dg = device.Upload(g);
            device.Kernels.OptimizerUpdate(dp.View.SubView(0, trained), dg.View, dm.View, dv.View, de.View.SubView(0, trained), Copy(0, trained), s, decay);
            device.Kernels.OptimizerUpdate(dp.View.SubView(trained, frozen), default, default, default, de.View.SubView(trained, frozen), Copy(trained, frozen),
                null, decay);
        }
        float[] values = [.. model.Value.Span, .. other.Value.Span];
        device.AssertSameBits(values, device.Download(dp));
        device.AssertSameBits(m, device.Download(dm));
        device.AssertSameBits(v, device.Download(dv));
        device.AssertSameBits([.. ema.Value.Span, .. otherEma.Value.Span], device.Download(de));
        if (bf16)
        {
            device.Accelerator.Synchronize();
            device.AssertSameHalves(values.Select(Bf16.Round).ToArray(), p16.GetAsArray1D(), "the bf16 copy");
        }
    }

    [Fact]
    public void Zero_ClearsOnlyItsView()
    {
        var values = KernelData.Uniform(20, 131, 1f, 2f);
        using var buffer = device.Upload(values);
        device.Kernels.Zero(buffer.View.SubView(5, 10));
        var after = device.Download(buffer);
        for (int i = 0; i < 20; i++) Assert.Equal(i is >= 5 and < 15 ? 0f : values[i], after[i]);
    }

    [Fact]
    public void ScaleAndAddInto_EqualTheCpuBackendsPartArithmeticBitForBit()
    {
        // The CPU backend scales each part's loss gradient by 1/parts and sums the parts' gradients left to right.
        var first = KernelData.Uniform(300, 137);
        var second = KernelData.Uniform(300, 139);
        var expected = first.ToArray();
        TensorPrimitives.Multiply(expected, 1f / 3, expected);
        TensorPrimitives.Add(expected, second, expected);
        using var sum = device.Upload(first);
        using var part = device.Upload(second);
        device.Kernels.Scale(sum.View, 1f / 3);
        device.Kernels.AddInto(sum.View, part.View);
        device.AssertSameBits(expected, device.Download(sum));
        Assert.Equal(second, device.Download(part));
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class TrainingKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : TrainingKernelsTests(device);
