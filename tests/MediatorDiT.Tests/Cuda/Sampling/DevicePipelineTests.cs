using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Models;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Sampling;

/// <summary>
/// <see cref="DiffusionPipeline"/> on a cuda compute context whose networks run through MediatorDiT.Cuda's
/// <see cref="DeviceModelFactory"/> on ILGPU's CPU accelerator (the device code a GPU runs, minus cuBLAS), against the
/// CPU pipeline on the same models, noise and labels: a 2-model mediator ladder under the SDE and the ODE, and a DiT
/// checkpoint under DDIM, all guided.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DevicePipelineTests(AcceleratorFixture device)
{
    private static ComputeContext OnCuda => TinyDeviceModels.OnCuda;

    private static SiTModel[] Ladder() => TinyDeviceModels.Ladder();

    private static SiTModel Model(ModelFamily family, AttentionKind attention, int mediators, int seed) =>
        TinyDeviceModels.Model(family, attention, mediators, seed);

    public static TheoryData<SamplerKind> TransportSamplers => new() { SamplerKind.Sde, SamplerKind.Ode };

    [Theory]
    [MemberData(nameof(TransportSamplers))]
    public void ALadderSampledOnTheDevice_GivesTheCpuPipelinesImages(SamplerKind sampler)
    {
        // The smaller model serves the first 2 of 5 steps, the larger the rest: both switch on the device.
        var options = new GenerationOptions
        {
            Sampler = sampler, OdeMethod = OdeMethod.Heun, Steps = 5, NumImages = 3, BatchSize = 3, Seed = 11, GuidanceScale = 4f,
            Schedule = new ScheduleChoice.Fixed([0.4]), Decode = false,
        };
        var expected = DiffusionPipeline.FromModels(Ladder()).Generate(options);
        var models = Ladder();
        using var factory = new CountingFactory(new DeviceModelFactory(device.Accelerator));
        var pipeline = DiffusionPipeline.FromModels(models, compute: OnCuda, deviceModels: factory);
        Assert.Same(factory, pipeline.DeviceModels);
        var actual = pipeline.Generate(options);

        // Every network call went to the device, each model through its own function.
        int evaluations = sampler == SamplerKind.Ode ? 2 * 4 : 5; // Heun on 5 time points: 4 steps of 2; SDE: 4 steps + the last
        Assert.Equal(evaluations, factory.Evaluations.Sum());
        Assert.Equal(sampler == SamplerKind.Ode ? [4, 4] : [2, 3], factory.Evaluations);
        Assert.Equal(expected.Record.Images.Select(i => i.FirstStepOfModel.ToArray()), actual.Record.Images.Select(i => i.FirstStepOfModel.ToArray()));
        AssertClose(expected.Samples, actual.Samples);
    }

    [Fact]
    public void ADitCheckpointSampledOnTheDevice_GivesTheCpuPipelinesImages()
    {
        var options = new GenerationOptions { Sampler = SamplerKind.Ddim, Steps = 4, NumImages = 2, BatchSize = 2, Seed = 13, GuidanceScale = 3f, Decode = false };
        var expected = DiffusionPipeline.FromModels([Model(ModelFamily.DiT, AttentionKind.Full, 4, 71)]).Generate(options);
        using var factory = new CountingFactory(new DeviceModelFactory(device.Accelerator));
        var actual = DiffusionPipeline.FromModels([Model(ModelFamily.DiT, AttentionKind.Full, 4, 71)], compute: OnCuda, deviceModels: factory).Generate(options);
        Assert.Equal([4], factory.Evaluations);
        AssertClose(expected.Samples, actual.Samples);
    }

    [Fact]
    public void OnTheCpuAFactoryIsNotUsed()
    {
        using var factory = new CountingFactory(new DeviceModelFactory(device.Accelerator));
        var pipeline = DiffusionPipeline.FromModels(Ladder(), deviceModels: factory);
        Assert.Null(pipeline.DeviceModels);
        pipeline.Generate(new GenerationOptions { Steps = 3, NumImages = 1, Schedule = new ScheduleChoice.Single(0), Decode = false });
        Assert.Empty(factory.Evaluations);
    }

    [Fact]
    public void ANetworksWeightsAreUploadedOnceAndItsViewsShareThem()
    {
        var model = Ladder()[1];
        using var factory = new DeviceModelFactory(device.Accelerator, "the CPU accelerator");
        var plain = factory.Create(model, null);
        var guided = factory.Create(model, ClassifierFreeGuidance.AllChannels(2f));
        Assert.Same(factory.Network(model), factory.Network(model));
        Assert.Equal((1, 2), (plain.RowsPerSample, guided.RowsPerSample));
        Assert.Equal("the CPU accelerator", factory.DeviceName);
        // The guided view is forward_with_cfg at its own scale, the plain one the forward, both on the one upload.
        var x = new Tensor(2, 4, 8, 8);
        KernelData.Uniform(x.Length, 5, -1f, 1f).CopyTo(x.Span);
        float[] t = [0.3f, 0.3f];
        int[] y = [2, 5];
        KernelData.AssertSameBits(factory.Network(model).ForwardWithCfg(x, t, y, 2f, null).Span.ToArray(), guided.Evaluate(x, t, y).Span.ToArray());
        KernelData.AssertSameBits(factory.Network(model).Forward(x, t, y).Span.ToArray(), plain.Evaluate(x, t, y).Span.ToArray());
        var e = Assert.Throws<MediatorDiTException>(() => factory.Create(model, new ClassifierFreeGuidance(2f, 5)));
        Assert.StartsWith("guidance is set for 5 channels but the model has only 4;", e.Message);
    }

    private static void AssertClose(Tensor expected, Tensor actual) => TinyDeviceModels.AssertClose(expected, actual);

    /// <summary>A factory that counts each model's device evaluations (models numbered in the order first created).</summary>
    private sealed class CountingFactory(DeviceModelFactory inner) : IDeviceModelFactory
    {
        private readonly List<SiTModel> _models = [];
        private readonly List<int> _counts = [];

        public IReadOnlyList<int> Evaluations => _counts;

        public string DeviceName => inner.DeviceName;

        public IModelFunction Create(SiTModel model, ClassifierFreeGuidance? guidance)
        {
            int index = _models.IndexOf(model);
            if (index < 0)
            {
                _models.Add(model);
                _counts.Add(0);
                index = _models.Count - 1;
            }
            return new Counted(inner.Create(model, guidance), () => _counts[index]++);
        }

        public void Dispose() => inner.Dispose();

        private sealed class Counted(IModelFunction function, Action count) : IModelFunction
        {
            public int RowsPerSample => function.RowsPerSample;

            public Tensor Evaluate(Tensor x, ReadOnlySpan<float> t, ReadOnlySpan<int> y)
            {
                count();
                return function.Evaluate(x, t, y);
            }
        }
    }
}
