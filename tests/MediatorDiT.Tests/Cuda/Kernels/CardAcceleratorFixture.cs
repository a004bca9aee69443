using MediatorDiT.Cuda;
using MediatorDiT.Devices;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The kernel and product tests' fixture on a real CUDA card, cuda:0 (scripts/gpu-tests.sh --kernels, through
/// <see cref="Runner.TraitTestRunner"/>): the accelerator the library opens there, with its kernels a warp per row.
/// Their comparisons with the CPU kernels are bounded where a CPU accelerator gives the same bits
/// (<see cref="AcceleratorFixture.SameBitsAsCpu"/>). xUnit never makes one: no test class asks for this type.
/// </summary>
public sealed class CardAcceleratorFixture : AcceleratorFixture
{
    private CardAcceleratorFixture(CudaDevice card) : base(card.Accelerator, card.Dispose, warpRows: true, sameBitsAsCpu: false) => Name = card.Name;

    /// <summary>The card in words, e.g. "cuda:0 (NVIDIA H200)".</summary>
    public string Name { get; }

    /// <summary>Why no card can be opened here (driver, cuBLAS or device missing), or null when one can.</summary>
    public static string? Missing() => DeviceAvailability.Problem(Card);

    /// <summary>Opens cuda:0 (one sentence when it cannot be used).</summary>
    public static CardAcceleratorFixture Open() => new(CudaDevice.Open(Card, "the kernel tests on the card"));

    private static DeviceSelection Card => new(ComputeDevice.Cuda, 0);
}
