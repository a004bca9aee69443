using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Models;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Cuda.Sampling;

/// <summary>
/// The device forward with bf16 matrix products against the fp32 one on the CPU accelerator (small random-weight
/// models, N(0, 0.2) weights, depth 2): the outputs differ (the bf16 path ran) by at most <see cref="Bound"/> of the
/// output's scale, max(1, max |fp32|). The default bf16 forward, whose kernels write the products' bf16 operands, gives
/// the bits of the reference that rounds each operand in a pass of its own, with a warp or a thread per row, guided or
/// not, observed or not.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceBf16Tests(AcceleratorFixture device, ITestOutputHelper output)
{
    /// <summary>
    /// bf16 keeps 8 significant bits, so a rounded operand is within 2^-9 relative and a product term within about
    /// 2^-8 = 3.9e-3; a layer's output is within that of its scale, and a depth-2 network chains about eight products
    /// (embeddings, per block adaLN, qkv, proj, fc1, fc2, final): 3e-2 is their sum of worst cases, without cancellation.
    /// </summary>
    private const double Bound = 3e-2;

    [Theory]
    [InlineData(ModelFamily.SiT, AttentionKind.Mediator, true)]
    [InlineData(ModelFamily.DiT, AttentionKind.Full, true)]
    public void Bf16Forward_DiffersFromFp32_WithinTheBound(ModelFamily family, AttentionKind attention, bool learnSigma)
    {
        var model = DeviceModelFunctionTests.RandomModel(family, attention, learnSigma, 41);
        var cfg = model.Config;
        var x = new Tensor(2, cfg.InChannels, cfg.InputSize, cfg.InputSize);
        KernelData.Uniform(x.Length, 42, -2f, 2f).CopyTo(x.Span);
        float[] t = family == ModelFamily.DiT ? [37f, 912f] : [0.3f, 0.8f];
        int[] y = [1, cfg.NumClasses];
        using var factory = new DeviceModelFactory(device.Accelerator, precision: DevicePrecision.Bf16);
        var bf16 = factory.Network(model);
        Assert.Equal(DevicePrecision.Bf16, bf16.Precision);
        using var fp32 = new DeviceModelFunction(model, device.Accelerator);
        Assert.Equal(DevicePrecision.Fp32, fp32.Precision);

        var expected = fp32.Forward(x, t, y).Span.ToArray();
        var actual = bf16.Forward(x, t, y).Span.ToArray();
        double scale = Math.Max(1.0, expected.Max(v => Math.Abs((double)v)));
        double largest = expected.Zip(actual, (e, a) => Math.Abs((double)a - e)).Max() / scale;
        double rms = Math.Sqrt(expected.Zip(actual, (e, a) => ((double)a - e) * ((double)a - e)).Average()) / scale;
        output.WriteLine($"{family} {attention}: bf16 vs fp32, largest difference {largest:E2}, rms {rms:E2} of the scale {scale:G4}");
        Assert.True(largest > 0, "the bf16 output equals the fp32 one bit for bit, so the bf16 products did not run");
        Assert.True(largest <= Bound, $"the bf16 output differs from fp32 by {largest:E2} of its scale");
    }

    [Theory]
    [InlineData(ModelFamily.SiT, AttentionKind.Mediator, false)]
    [InlineData(ModelFamily.SiT, AttentionKind.Mediator, true)]
    [InlineData(ModelFamily.DiT, AttentionKind.Full, true)]
    public void Bf16OperandsFromTheirProducers_GiveTheSeparateRoundingsBits(ModelFamily family, AttentionKind attention, bool warpRows)
    {
        var model = DeviceModelFunctionTests.RandomModel(family, attention, learnSigma: true, 43);
        var cfg = model.Config;
        var x = new Tensor(2, cfg.InChannels, cfg.InputSize, cfg.InputSize);
        KernelData.Uniform(x.Length, 44, -2f, 2f).CopyTo(x.Span);
        float[] t = family == ModelFamily.DiT ? [37f, 912f] : [0.3f, 0.8f];
        int[] y = [1, cfg.NumClasses];
        var kernels = warpRows ? device.WarpRowKernels : device.ThreadRowKernels;
        float[][] Run(bool fromProducers)
        {
            using var network = new DeviceModelFunction(model, kernels, new IlgpuGemm(device.Accelerator, plain: true), null, DevicePrecision.Bf16,
                fromProducers);
            var plain = network.Forward(x, t, y).Span.ToArray();
            var guided = network.ForwardWithCfg(x, t, y, 4f).Span.ToArray();
            var inputs = new List<float>();
            float[] observed;
            using (network.ObserveAttentionInputs((_, input, _) => inputs.AddRange(input.Span.ToArray())))
                observed = network.Forward(x, t, y).Span.ToArray();
            return [plain, guided, observed, inputs.ToArray()];
        }
        var expected = Run(fromProducers: false);
        var actual = Run(fromProducers: true);
        string[] names = ["forward", "guided forward", "observed forward", "observed attention inputs"];
        for (int i = 0; i < names.Length; i++)
        {
            Assert.True(expected[i].Length > 0 && expected[i].Any(v => v != 0), $"{names[i]}: nothing to compare");
            KernelData.AssertSameBits(expected[i], actual[i]);
        }
        KernelData.AssertSameBits(expected[0], expected[2]); // observing does not change the forward
    }
}
