using MediatorDiT.Cuda.Blas;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Sampling;

/// <summary>
/// The whole network on ILGPU's CPU accelerator against the CPU backend's forward, on small random-weight models
/// (N(0, 0.2) weights, as the golden fixtures): SiT and DiT, full and mediator attention, learn_sigma on and off,
/// plain and guided. Forward tolerance 1e-4 of max(1, max |expected|), the fp32 bound.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class DeviceModelFunctionTests(AcceleratorFixture device)
{
    private const float Tolerance = 1e-4f;

    public static TheoryData<ModelFamily, AttentionKind, bool> Models => new()
    {
        { ModelFamily.SiT, AttentionKind.Mediator, true },
        { ModelFamily.SiT, AttentionKind.Full, false },
        { ModelFamily.DiT, AttentionKind.Full, true },
        { ModelFamily.DiT, AttentionKind.Mediator, false },
    };

    internal static SiTModel RandomModel(ModelFamily family, AttentionKind attention, bool learnSigma, int seed)
    {
        var config = new ModelConfig
        {
            InputSize = 8, PatchSize = 2, InChannels = 3, HiddenSize = 32, Depth = 2, NumHeads = 2, MlpRatio = 2.0, NumClasses = 5,
            LearnSigma = learnSigma, MediatorNum = 4, Attention = attention, Family = family,
        };
        var model = new SiTModel(config);
        var random = new RandomSource((ulong)seed);
        foreach (var p in model.Parameters)
            if (p.Trainable) random.FillGaussian(p.Value.Span, 0, 0.2f);
        return model;
    }

    private static (Tensor X, float[] T, int[] Y) Inputs(ModelConfig config, int batch, int seed, bool guided)
    {
        var x = new Tensor(batch, config.InChannels, config.InputSize, config.InputSize);
        KernelData.Uniform(x.Length, seed, -2f, 2f).CopyTo(x.Span);
        var random = new Random(seed);
        bool dit = config.Family == ModelFamily.DiT;
        var t = Enumerable.Range(0, batch).Select(_ => dit ? random.Next(1000) : random.NextSingle()).ToArray();
        var y = Enumerable.Range(0, batch).Select(i => guided && i >= batch / 2 ? config.NumClasses : random.Next(config.NumClasses)).ToArray();
        return (x, t, y);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Forward_MatchesTheCpuModel(ModelFamily family, AttentionKind attention, bool learnSigma)
    {
        var model = RandomModel(family, attention, learnSigma, 41);
        var (x, t, y) = Inputs(model.Config, 2, 42, guided: false);
        var expected = model.Forward(x, t, y);
        using var function = new DeviceModelFunction(model, device.Accelerator);
        var actual = function.Evaluate(x, t, y);
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(model.Config.ReturnedChannels, actual.Dim(1));
        AssertClose(expected.Span, actual.Span);
        // A second call of the same batch size reuses the buffers and gives the same values.
        KernelData.AssertSameBits(actual.Span.ToArray(), function.Evaluate(x, t, y).Span.ToArray());
    }

    [Theory]
    [InlineData(AttentionKind.Mediator, 3)]
    [InlineData(AttentionKind.Full, null)]
    public void GuidedEvaluate_MatchesTheCpuGuidedFunction(AttentionKind attention, int? guidedChannels)
    {
        var model = RandomModel(ModelFamily.SiT, attention, learnSigma: true, 43);
        var guidance = new ClassifierFreeGuidance(4f, guidedChannels);
        var (x, t, y) = Inputs(model.Config, 4, 44, guided: true);
        var expected = new GuidedNetworkFunction(model, guidance).Evaluate(x, t, y);
        using var function = new DeviceModelFunction(model, device.Accelerator, guidance);
        Assert.Equal(2, function.RowsPerSample);
        AssertClose(expected.Span, function.Evaluate(x, t, y).Span);
    }

    [Fact]
    public void TheBatchSizeMayChangeBetweenCalls_AndTheTiledGemmGivesThePlainOnesBits()
    {
        // The CPU accelerator's default is the plain GEMM; the tiled one (a GPU's) must give the same forward.
        var model = RandomModel(ModelFamily.SiT, AttentionKind.Mediator, learnSigma: true, 45);
        using var function = new DeviceModelFunction(model, device.Accelerator);
        using var tiled = new DeviceModelFunction(model, device.Kernels, new IlgpuGemm(device.Accelerator, plain: false), null);
        foreach (int batch in new[] { 1, 3 })
        {
            var (x, t, y) = Inputs(model.Config, batch, 46 + batch, guided: false);
            var actual = function.Evaluate(x, t, y);
            AssertClose(model.Forward(x, t, y).Span, actual.Span);
            if (batch == 1) KernelData.AssertSameBits(actual.Span.ToArray(), tiled.Evaluate(x, t, y).Span.ToArray());
        }
    }

    [Fact]
    public void BadInputsAreRefusedWithOneSentence()
    {
        var model = RandomModel(ModelFamily.SiT, AttentionKind.Full, learnSigma: false, 47);
        using var function = new DeviceModelFunction(model, device.Accelerator);
        var (x, t, _) = Inputs(model.Config, 2, 48, guided: false);
        var e = Assert.Throws<MediatorDiTException>(() => function.Evaluate(x, t, [0, 9]));
        Assert.StartsWith("class label 9 is out of range", e.Message);
        Assert.Throws<MediatorDiTException>(() => function.Evaluate(x, t, [0]));
        Assert.Throws<MediatorDiTException>(() => new DeviceModelFunction(model, device.Accelerator, new ClassifierFreeGuidance(2f, 4)));
    }

    [Fact]
    public void TheGoldenFixturesGuidedOutput_IsReproducedOnTheDevice()
    {
        var file = SafeTensors.Read(Fixtures.PathOf("mediator_grid4_m4.weights.safetensors"));
        var config = ModelConfig.FromJson(file.Metadata["config"], "mediator_grid4_m4");
        var model = new SiTModel(config);
        StateDict.LoadInto(model, file.Tensors, strict: true, "mediator_grid4_m4");
        var io = SafeTensors.Read(Fixtures.PathOf("mediator_grid4_m4.io.safetensors"));
        using var function = new DeviceModelFunction(model, device.Accelerator);
        var output = function.ForwardWithCfg(io.GetFloat("cfg.x"), io.GetFloat("cfg.t").Span, io.GetInt64("cfg.y").Select(v => (int)v).ToArray(), 4f, 3);
        AssertClose(io.GetFloat("cfg.out").Span, output.Span);
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = 1f;
        foreach (float v in expected) scale = Math.Max(scale, Math.Abs(v));
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(actual[i] - expected[i]) <= Tolerance * scale))
                Assert.Fail($"element {i}: expected {expected[i]:R}, got {actual[i]:R} (tolerance {Tolerance * scale})");
    }
}
