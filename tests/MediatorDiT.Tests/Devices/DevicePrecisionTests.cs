using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Devices;

/// <summary>The precision's written forms, its default per device and the cpu's refusal of bf16.</summary>
public class DevicePrecisionTests
{
    [Theory]
    [InlineData("fp32", DevicePrecision.Fp32)]
    [InlineData(" BF16 ", DevicePrecision.Bf16)]
    [InlineData("Fp32", DevicePrecision.Fp32)]
    public void TheFormsParse_AndPrintBack(string text, DevicePrecision expected)
    {
        Assert.Equal(expected, DevicePrecisions.Parse(text));
        Assert.Equal(text.Trim().ToLowerInvariant(), expected.Name());
    }

    [Theory]
    [InlineData("fp16")]
    [InlineData("tf32")]
    [InlineData("")]
    [InlineData(null)]
    public void OtherFormsAreRefused(string? text)
    {
        Assert.False(DevicePrecisions.TryParse(text, out _));
        var e = Assert.Throws<MediatorDiTException>(() => DevicePrecisions.Parse(text, "--precision"));
        Assert.Equal($"--precision must be fp32 or bf16, got '{text}'.", e.Message);
    }

    [Fact]
    public void TheDefaultIsBf16OnAGpu_AndFp32OnTheCpu()
    {
        Assert.Equal(DevicePrecision.Bf16, DevicePrecisions.For(ComputeDevice.Cuda, null));
        Assert.Equal(DevicePrecision.Fp32, DevicePrecisions.For(ComputeDevice.Cpu, null));
        Assert.Equal(DevicePrecision.Fp32, DevicePrecisions.For(ComputeDevice.Cuda, DevicePrecision.Fp32));
        Assert.Equal(DevicePrecision.Fp32, DevicePrecisions.For(ComputeDevice.Cpu, DevicePrecision.Fp32));
    }

    [Fact]
    public void Bf16OnTheCpuIsRefused()
    {
        var e = Assert.Throws<MediatorDiTException>(() => DevicePrecisions.For(ComputeDevice.Cpu, DevicePrecision.Bf16, "--precision"));
        Assert.Equal("--precision bf16 runs on a GPU only; the cpu computes in float32.", e.Message);
    }
}
