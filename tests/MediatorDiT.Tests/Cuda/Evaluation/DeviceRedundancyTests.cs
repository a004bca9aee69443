using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;
using MediatorDiT.Tests.Cuda.Sampling;

namespace MediatorDiT.Tests.Cuda.Evaluation;

/// <summary>
/// The redundancy measurement with its networks on the device (<see cref="DeviceModelFactory"/> on ILGPU's CPU
/// accelerator): the device hands each block's attention input back (<see cref="IAttentionInputSource"/>) and the
/// analysis gives the CPU analysis's values.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceRedundancyTests(AcceleratorFixture device)
{
    /// <summary>
    /// S of a layer and step, device against CPU: the attention inputs agree to rounding (the forward's 1e-4 bound of
    /// the scale and the sampler's states within 1e-3, DevicePipelineTests), and S, a mean of JS divergences of softmax
    /// rows built from them, moves by about as much relative to itself; 1e-3 relative plus 1e-6 absolute (S near 0 for
    /// near-uniform maps). Measured: 1.3e-6 (the guided ladder) and 3.6e-7 (full attention).
    /// </summary>
    private const double RelativeTolerance = 1e-3, AbsoluteTolerance = 1e-6;

    private static RedundancyOptions Options => new() { Samples = 3, BatchSize = 2 };

    [Fact]
    public void AGuidedMediatorLadderMeasuredOnTheDevice_GivesTheCpuValues()
    {
        static SiTModel[] Ladder() => [TinyDeviceModels.Model(ModelFamily.SiT, AttentionKind.Mediator, 4, 81), TinyDeviceModels.Model(ModelFamily.SiT, AttentionKind.Mediator, 16, 82)];
        var sampler = new SdeSampler(new Transport(), new SdeSamplerOptions { NumSteps = 5 });
        var guidance = ClassifierFreeGuidance.Official(3f);
        var expected = RedundancyAnalysis.Measure(Ladder(), guidance, new FixedModelSchedule(0.5), sampler, new RandomSource(5), Options);
        using var factory = new DeviceModelFactory(device.Accelerator);
        var actual = RedundancyAnalysis.Measure(Ladder(), guidance, new FixedModelSchedule(0.5), sampler, new RandomSource(5), Options, deviceModels: factory);
        AssertSameValues(expected, actual);
    }

    [Fact]
    public void AFullAttentionModelUnderTheOdeMeasuredOnTheDevice_GivesTheCpuValues()
    {
        static SiTModel[] One() => [TinyDeviceModels.Model(ModelFamily.SiT, AttentionKind.Full, 0, 83)];
        var sampler = new OdeSampler(new Transport(), new OdeSamplerOptions { NumSteps = 4, Method = OdeMethod.Heun });
        var expected = RedundancyAnalysis.Measure(One(), null, null, sampler, new RandomSource(6), Options);
        using var factory = new DeviceModelFactory(device.Accelerator);
        var actual = RedundancyAnalysis.Measure(One(), null, null, sampler, new RandomSource(6), Options, deviceModels: factory);
        AssertSameValues(expected, actual);
    }

    [Fact]
    public void AnObservedDeviceNetwork_HandsTheCpuAttentionInputs_AndComputesAsBefore()
    {
        var model = TinyDeviceModels.Model(ModelFamily.SiT, AttentionKind.Mediator, 4, 84);
        using var factory = new DeviceModelFactory(device.Accelerator);
        var network = factory.Network(model);
        var guided = (IAttentionInputSource)factory.Create(model, ClassifierFreeGuidance.Official(2f));
        var x = new Tensor(4, 4, 8, 8);
        KernelData.Uniform(x.Length, 7, -1f, 1f).CopyTo(x.Span);
        float[] t = [0.2f, 0.4f, 0.6f, 0.8f];
        int[] y = [0, 1, 2, 5];
        var plain = network.Forward(x, t, y).Span.ToArray();

        var expected = new List<(int Layer, float[] Input, int Batch)>();
        using (AttentionObserver.Attach(model, (layer, input, batch) => expected.Add((layer, input.Span.ToArray(), batch))))
            model.Forward(x, t, y);
        var seen = new List<(int Layer, float[] Input, int Batch)>();
        float[] observedOutput;
        using (guided.ObserveAttentionInputs((layer, input, batch) => seen.Add((layer, input.Span.ToArray(), batch))))
        {
            Assert.Throws<InvalidOperationException>(() => network.ObserveAttentionInputs((_, _, _) => { }));
            observedOutput = network.Forward(x, t, y).Span.ToArray();
        }
        KernelData.AssertSameBits(plain, observedOutput); // observing changes nothing on the device
        Assert.Equal(expected.Select(e => (e.Layer, e.Batch, e.Input.Length)), seen.Select(s => (s.Layer, s.Batch, s.Input.Length)));
        for (int i = 0; i < expected.Count; i++)
        {
            float scale = MathF.Max(1f, expected[i].Input.Max(MathF.Abs));
            float worst = expected[i].Input.Zip(seen[i].Input, (e, a) => MathF.Abs(e - a)).Max();
            Assert.True(worst <= 1e-4f * scale, $"layer {expected[i].Layer}: max |device - cpu| = {worst:E3} of scale {scale:E3}");
        }

        // Detached: later calls hand nothing.
        int calls = seen.Count;
        network.Forward(x, t, y);
        Assert.Equal(calls, seen.Count);
    }

    private static void AssertSameValues(IReadOnlyList<RedundancyPoint> expected, IReadOnlyList<RedundancyPoint> actual)
    {
        Assert.Equal(expected.Select(p => (p.Layer, p.Step, p.T, p.Samples)), actual.Select(p => (p.Layer, p.Step, p.T, p.Samples)));
        Assert.Contains(expected, p => p.S > 1e-3); // the maps are not uniform: S measures something
        double worst = 0;
        for (int i = 0; i < expected.Count; i++)
            worst = Math.Max(worst, Math.Abs(expected[i].S - actual[i].S) / Math.Max(expected[i].S, AbsoluteTolerance / RelativeTolerance));
        Assert.True(worst <= RelativeTolerance, $"worst relative difference of S {worst:E3}");
    }
}
