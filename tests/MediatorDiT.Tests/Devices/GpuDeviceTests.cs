using MediatorDiT.Devices;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Devices;

/// <summary>On a machine with an NVIDIA GPU: the libraries are found and the driver counts the device.</summary>
[Trait("Category", "Gpu")]
public class GpuDeviceTests
{
    [GpuFact]
    public void TheDriverAndCublasAreFound_AndTheDriverCountsAtLeastOneDevice()
    {
        var report = CudaLibraries.Locate();
        Assert.True(report.Complete, report.Describe());
        Assert.True(CudaDriver.CountDevices(report.Driver!, out string? problem) >= 1, problem);
    }

    [GpuFact]
    public void ADeviceNumberBeyondTheMachinesIsRefused()
    {
        string? problem = DeviceAvailability.Problem(new DeviceSelection(ComputeDevice.Cuda, 999));
        Assert.NotNull(problem);
        Assert.StartsWith("this machine has ", problem);
    }
}
