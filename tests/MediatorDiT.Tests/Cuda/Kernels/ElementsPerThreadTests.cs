using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The element kernels that take four elements per thread (thread t of T: t, t + T, t + 2T, t + 3T) at lengths that
/// leave the last threads part empty or leave threads without an element: every element written once, with the
/// per-element result, and nothing past the end.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class ElementsPerThreadTests(AcceleratorFixture device)
{
    public static TheoryData<int> Lengths => new() { 1, 2, 3, 4, 5, 7, 1001 };

    [Theory]
    [MemberData(nameof(Lengths))]
    public void RoundingAndGelu_WriteEveryElementOnce(int n)
    {
        var x = KernelData.Uniform(n, 300 + n, -5f, 5f);
        using var dx = device.Upload(x);
        using var rounded = Sentinels(n + 3);
        device.Kernels.RoundToBf16(dx.View, rounded.View.SubView(0, n));
        var actual = Download(rounded);
        for (int i = 0; i < n; i++) Assert.Equal(Bf16.Round(x[i]), actual[i]);
        Assert.All(actual[n..], v => Assert.Equal(Sentinel, v));

        using var bias = device.Upload(KernelData.Uniform(n, 320 + n, -1f, 1f)); // one row: element i reads bias[i]
        using var gelu = device.Accelerator.Allocate1D<float>(n);
        using var x16 = device.Accelerator.Allocate1D(x.Select(Bf16.Round).ToArray()); // GELU reads fc1's bf16 output
        device.Kernels.GeluForward(x16.View, bias.View, gelu.View);
        var expected = device.Download(gelu);
        using var gelu16 = Sentinels(n + 3);
        device.Kernels.GeluForwardBf16(x16.View, bias.View, gelu16.View.SubView(0, n));
        var actual16 = Download(gelu16);
        device.AssertSameHalves(expected.Select(Bf16.Round).ToArray(), actual16[..n], "GELU's bf16 output"); // two kernels: a card may contract them apart
        Assert.All(actual16[n..], v => Assert.Equal(Sentinel, v));
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(1, 3, 1, 3)] // 9 values
    [InlineData(2, 3, 2, 5)] // 60 values, heads side by side
    public void HeadMajorMoves_PlaceEveryValueOnce(int batch, int tokens, int heads, int headDim)
    {
        int dim = heads * headDim, ld = 3 * dim, count = batch * tokens * dim;
        var layout = new HeadLayout(tokens, heads, headDim, ld, dim); // the k part of qkv rows
        var qkv = KernelData.Uniform(batch * tokens * ld, 310 + count);
        using var src = device.Upload(qkv);
        using var headMajor = device.Accelerator.Allocate1D<float>(count);
        device.Kernels.ToHeadMajor(src.View, headMajor.View, batch, layout);
        var moved = device.Download(headMajor);
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        for (int r = 0; r < tokens; r++)
        for (int c = 0; c < headDim; c++)
            Assert.Equal(qkv[(b * tokens + r) * ld + dim + h * headDim + c], moved[((b * heads + h) * tokens + r) * headDim + c]);

        using var headMajor16 = Sentinels(count + 3);
        device.Kernels.ToHeadMajorBf16(src.View, headMajor16.View.SubView(0, count), batch, layout);
        var moved16 = Download(headMajor16);
        for (int i = 0; i < count; i++) Assert.Equal(Bf16.Round(moved[i]), moved16[i]);
        Assert.All(moved16[count..], v => Assert.Equal(Sentinel, v));

        // With a row's bias (ld values) added as the values move: each value plus its column's bias, fl(x + b).
        var bias = KernelData.Uniform(ld, 330 + count, -1f, 1f);
        using var dBias = device.Upload(bias);
        using var biasedMajor = device.Accelerator.Allocate1D<float>(count);
        using var biasedMajor16 = Sentinels(count);
        device.Kernels.ToHeadMajor(src.View, biasedMajor.View, batch, layout, dBias.View);
        var biased = device.Download(biasedMajor);
        device.Kernels.ToHeadMajorBf16(src.View, biasedMajor16.View, batch, layout, dBias.View);
        var biased16 = Download(biasedMajor16);
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        for (int r = 0; r < tokens; r++)
        for (int c = 0; c < headDim; c++)
        {
            int column = dim + h * headDim + c, i = ((b * heads + h) * tokens + r) * headDim + c;
            float expected = qkv[(b * tokens + r) * ld + column] + bias[column];
            Assert.Equal(expected, biased[i]);
            Assert.Equal(Bf16.Round(expected), biased16[i]);
        }

        // Back into zeroed rows: the k columns get the values, every other column stays zero.
        using var back = device.Upload(new float[qkv.Length]);
        device.Kernels.FromHeadMajor(headMajor.View, back.View, batch, layout);
        var rows = device.Download(back);
        for (int i = 0; i < rows.Length; i++)
        {
            bool isK = i % ld >= dim && i % ld < 2 * dim;
            Assert.Equal(isK ? qkv[i] : 0f, rows[i]);
        }
    }

    private const ushort Sentinel = 0xABCD;

    private MemoryBuffer1D<ushort, Stride1D.Dense> Sentinels(int length) => device.Accelerator.Allocate1D(Enumerable.Repeat(Sentinel, length).ToArray());

    private ushort[] Download(MemoryBuffer1D<ushort, Stride1D.Dense> buffer)
    {
        device.Accelerator.Synchronize();
        return buffer.GetAsArray1D();
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class ElementsPerThreadOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : ElementsPerThreadTests(device);
