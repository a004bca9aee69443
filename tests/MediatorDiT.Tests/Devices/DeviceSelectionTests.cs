using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Devices;

public class DeviceSelectionTests
{
    [Theory]
    [InlineData("cpu", ComputeDevice.Cpu, 0)]
    [InlineData(" CPU ", ComputeDevice.Cpu, 0)]
    [InlineData("cuda", ComputeDevice.Cuda, 0)]
    [InlineData("cuda:0", ComputeDevice.Cuda, 0)]
    [InlineData("CUDA:3", ComputeDevice.Cuda, 3)]
    [InlineData("cuda:12", ComputeDevice.Cuda, 12)]
    public void TheAcceptedFormsParse(string text, ComputeDevice device, int index)
    {
        var selection = DeviceSelection.Parse(text);
        Assert.Equal(new DeviceSelection(device, index), selection);
        Assert.Equal(device == ComputeDevice.Cpu ? "cpu" : $"cuda:{index}", selection.ToString());
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:+1")]
    [InlineData("cuda:1x")]
    [InlineData("cuda:99999999999")]
    [InlineData("cuda 1")]
    [InlineData("")]
    [InlineData("cpu:0")]
    public void AnythingElseIsRefusedInOneSentence(string text)
    {
        var e = Assert.Throws<MediatorDiTException>(() => DeviceSelection.Parse(text, "--device"));
        Assert.Equal($"--device must be cpu, cuda or cuda:N (N = 0, 1, ...), got '{text}'.", e.Message);
        Assert.False(DeviceSelection.TryParse(text, out _));
    }

    [Fact]
    public void TheContextCarriesTheDeviceAndItsNumber()
    {
        var context = DeviceSelection.Parse("cuda:2").ApplyTo(ComputeContext.WithThreads(1));
        Assert.Equal(ComputeDevice.Cuda, context.Device);
        Assert.Equal(2, context.DeviceIndex);
        Assert.Equal(1, context.Threads);
        Assert.Equal("cuda:2", context.DeviceSelection.ToString());
        Assert.Equal("cpu", ComputeContext.Default.DeviceSelection.ToString());
        Assert.Throws<MediatorDiTException>(() => ComputeContext.Default with { DeviceIndex = -1 });
    }
}
