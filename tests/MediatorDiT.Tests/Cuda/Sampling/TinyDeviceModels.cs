using MediatorDiT.Models;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Cuda.Sampling;

/// <summary>
/// The small random networks the device pipeline tests sample with (8x8x4 input, patch 2: a 4 x 4 token grid, hidden 32,
/// depth 2, 2 heads, 5 classes), and the comparison of a device run's tensors with the CPU run's.
/// </summary>
internal static class TinyDeviceModels
{
    /// <summary>
    /// Each forward matches the CPU within 1e-4 of max(1, max |output|) (DeviceModelFunctionTests); guidance at scale s
    /// turns the two halves' errors into at most (2s - 1) times that, 7e-4 at s = 4. A step adds its step size times the
    /// prediction and the step sizes sum to the time span (1 for SiT; DDIM's x0 and eps terms are rescaled alike, as is
    /// the image), so over the 4 to 8 evaluations here the images stay within that bound of max(1, max |image|) unless
    /// the networks amplify it; 1e-3 leaves room for the random networks' mild growth. Measured: about 1.5e-6 of the
    /// scale (1e-5 on images up to 9, 1.8e-4 on DDIM's up to 126), while a wrong kernel is off by the order of 1.
    /// </summary>
    public const float Tolerance = 1e-3f;

    /// <summary>A cuda compute context (one thread for the CPU side), the device given by a factory.</summary>
    public static readonly ComputeContext OnCuda = ComputeContext.WithThreads(1) with { Device = ComputeDevice.Cuda };

    /// <summary>A SiT ladder of 1 and 4 mediators on a 4 x 4 token grid, 4 channels (guidance takes the official first 3).</summary>
    public static SiTModel[] Ladder() =>
        [Model(ModelFamily.SiT, AttentionKind.Mediator, mediators: 1, seed: 61), Model(ModelFamily.SiT, AttentionKind.Mediator, mediators: 4, seed: 62)];

    /// <summary>A network with N(0, 0.2) weights from <paramref name="seed"/> (learn_sigma for DiT).</summary>
    public static SiTModel Model(ModelFamily family, AttentionKind attention, int mediators, int seed)
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

    /// <summary>max |expected - actual| within <see cref="Tolerance"/> of max(1, max |expected|).</summary>
    public static void AssertClose(Tensor expected, Tensor actual)
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
}
