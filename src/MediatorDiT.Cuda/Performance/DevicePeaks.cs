using MediatorDiT.Tensors;

namespace MediatorDiT.Cuda.Performance;

/// <summary>A device's peak rate for a number format, and what it is.</summary>
/// <param name="FlopsPerSecond">FLOP/s (a multiply-accumulate counts 2).</param>
/// <param name="Description">e.g. "NVIDIA H200, dense bf16 tensor cores".</param>
public sealed record DevicePeak(double FlopsPerSecond, string Description);

/// <summary>
/// The vendor's dense peak rates of the GPUs this project is measured on, to give achieved rates a limit to compare
/// with (model FLOP utilisation). bf16 is the tensor cores' dense rate with fp32 accumulation (no sparsity); fp32 the
/// CUDA cores' rate (no TF32). Unknown cards have none.
/// </summary>
public static class DevicePeaks
{
    /// <summary>H200 (SXM) dense bf16 tensor-core peak, FLOP/s.</summary>
    public const double H200Bf16 = 989e12;

    /// <summary>H200 (SXM) fp32 peak (CUDA cores, no tensor cores), FLOP/s.</summary>
    public const double H200Fp32 = 67e12;

    // (name part, name part that must be absent, bf16, fp32): the first match wins. NVL variants run at other clocks and
    // are left unknown rather than guessed.
    private static readonly (string Name, string? Not, double Bf16, double Fp32, string Model)[] Table =
    [
        ("H200", "NVL", H200Bf16, H200Fp32, "H200 SXM"),
        ("H100 PCIe", null, 756e12, 51e12, "H100 PCIe"),
        ("H100", "NVL", 989e12, 67e12, "H100 SXM"),
        ("A100", null, 312e12, 19.5e12, "A100"),
    ];

    /// <summary>
    /// The peak of the device named <paramref name="deviceName"/> (as the driver names it, e.g. "NVIDIA H200") for
    /// matrix products at <paramref name="precision"/>, or null when the card is not in the table.
    /// </summary>
    public static DevicePeak? For(string deviceName, DevicePrecision precision)
    {
        ArgumentNullException.ThrowIfNull(deviceName);
        foreach (var (name, not, bf16, fp32, model) in Table)
        {
            if (!deviceName.Contains(name, StringComparison.OrdinalIgnoreCase)) continue;
            if (not is not null && deviceName.Contains(not, StringComparison.OrdinalIgnoreCase)) continue;
            return precision == DevicePrecision.Bf16
                ? new DevicePeak(bf16, $"{model} dense bf16 tensor-core peak")
                : new DevicePeak(fp32, $"{model} fp32 peak (CUDA cores, no TF32)");
        }
        return null;
    }
}
