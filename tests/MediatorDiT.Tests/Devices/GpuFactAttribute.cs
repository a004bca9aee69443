using MediatorDiT.Devices;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Devices;

/// <summary>
/// A test that needs a CUDA device (driver, cuBLAS and GPU 0): reported as skipped, with the reason, where there is
/// none. Classes of such tests also carry [Trait("Category", "Gpu")], so `--filter Category!=Gpu` leaves them out.
/// </summary>
public sealed class GpuFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> s_missing = new(() => DeviceAvailability.Problem(new DeviceSelection(ComputeDevice.Cuda, 0)));

    public GpuFactAttribute()
    {
        if (s_missing.Value is string missing) Skip = $"needs a CUDA device: {missing}.";
    }
}
