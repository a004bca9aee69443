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
public class DevicePipelineTests(CpuAcceleratorFixture device)
{
    /// <summary>
    /// Each forward matches the CPU within 1e-4 of max(1, max |output|) (DeviceModelFunctionTests); guidance at scale s
    /// turns the two halves' errors into at most (2s - 1) times that, 7e-4 at s = 4. A step adds its step size times the
    /// prediction and the step sizes sum to the time span (1 for SiT; DDIM's x0 and eps terms are rescaled alike, as is
    /// the image), so over the 4 to 8 evaluations here the images stay within that bound of max(1, max |image|) unless
    /// the networks amplify it; 1e-3 leaves room for the random networks' mild growth. Measured: about 1.5e-6 of the
    /// scale (1e-5 on images up to 9, 1.8e-4 on DDIM's up to 126), while a wrong kernel is off by the order of 1.
    /// </summary>
    private const float Tolerance = 1e-3f;

    private static readonly ComputeContext OnCuda = ComputeContext.WithThreads(1) with { Device = ComputeDevice.Cuda };

    /// <summary>A SiT ladder of 1 and 4 mediators on a 4 x 4 token grid, 4 channels (guidance takes the official first 3).</summary>
    private static SiTModel[] Ladder() => [Model(ModelFamily.SiT, AttentionKind.Mediator, mediators: 1, seed: 61), Model(ModelFamily.SiT, AttentionKind.Mediator, mediators: 4, seed: 62)];

    private static SiTModel Model(ModelFamily family, AttentionKind attention, int mediators, int seed)
    {
        var config = new ModelConfig
        {
            InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 2, NumHeads = 2, MlpRatio = 2.0, NumClasses = 5,
            LearnSigma = family == ModelFamily.DiT, MediatorNum = mediators, Attention = attention, Family = family,
        };
        var model = new SiTModel(config);
        var random = new RandomSource((ulong)seed);
        foreach (var p in model.Parameters)
            if (p.Trainable) random.FillGaussian(p.Value.Span, 0, 0.2f);
        return model;
    }

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

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        float scale = 1f, worst = 0f;
        var e = expected.Span;
        var a = actual.Span;
        for (int i = 0; i < e.Length; i++)
        {
            scale = MathF.Max(scale, MathF.Abs(e[i]));
            worst = MathF.Max(worst, MathF.Abs(e[i] - a[i]));
        }
        Assert.True(worst <= Tolerance * scale, $"max |device - cpu| = {worst:E3}, allowed {Tolerance * scale:E3} (scale {scale:E3})");
    }

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
