namespace MediatorDiT.Tensors;

/// <summary>
/// The number format of a device backend's matrix products (docs/GPU.md, "Precision"). The setting travels with the
/// objects that run the device work (MediatorDiT.Cuda's DeviceModelFactory, DeviceModelFunction and
/// DeviceTrainingBackend take it at construction), not with <see cref="ComputeContext"/>: those objects keep bf16
/// copies of the weights and choose their matrix-product calls once, when they are built, whereas a context is
/// entered per call for the CPU kernels, which always compute in float32 and would ignore it.
/// </summary>
public enum DevicePrecision
{
    /// <summary>float32 throughout, no TF32: the device reproduces the CPU backend to rounding.</summary>
    Fp32,
    /// <summary>
    /// The linear layers' matrix products take bf16 inputs (rounded to nearest, ties to even) with float32
    /// accumulation and float32 outputs, on tensor cores on a GPU; master weights, softmax, norms, the loss and the
    /// optimiser stay float32.
    /// </summary>
    Bf16,
}

/// <summary>The written forms of <see cref="DevicePrecision"/> ("fp32", "bf16"), their defaults per device and the cpu's refusal of bf16.</summary>
public static class DevicePrecisions
{
    /// <summary>The accepted forms, for help texts and errors.</summary>
    public const string Forms = "fp32 or bf16";

    /// <summary>"fp32" or "bf16".</summary>
    public static string Name(this DevicePrecision precision) => precision == DevicePrecision.Bf16 ? "bf16" : "fp32";

    /// <summary>Parses "fp32" or "bf16" (any letter case, surrounding blanks); false for anything else.</summary>
    public static bool TryParse(string? text, out DevicePrecision precision)
    {
        precision = DevicePrecision.Fp32;
        switch (text?.Trim().ToLowerInvariant())
        {
            case "fp32":
                return true;
            case "bf16":
                precision = DevicePrecision.Bf16;
                return true;
            default:
                return false;
        }
    }

    /// <summary>As <see cref="TryParse"/>; one sentence naming <paramref name="what"/> and the accepted forms otherwise.</summary>
    /// <exception cref="MediatorDiTException">The text is neither form.</exception>
    public static DevicePrecision Parse(string? text, string what = "the precision") =>
        TryParse(text, out var precision) ? precision : throw new MediatorDiTException($"{what} must be {Forms}, got '{text}'.");

    /// <summary>The default on <paramref name="device"/>: bf16 on a GPU (tensor cores), fp32 on the cpu.</summary>
    public static DevicePrecision DefaultFor(ComputeDevice device) => device == ComputeDevice.Cpu ? DevicePrecision.Fp32 : DevicePrecision.Bf16;

    /// <summary>
    /// The precision to run with on <paramref name="device"/>: <paramref name="requested"/>, or the device's default
    /// when null. The cpu computes in float32 only, so bf16 there is refused; <paramref name="what"/> names the
    /// setting in that sentence (e.g. "--precision").
    /// </summary>
    /// <exception cref="MediatorDiTException">bf16 was asked for on the cpu.</exception>
    public static DevicePrecision For(ComputeDevice device, DevicePrecision? requested, string what = "precision")
    {
        if (device == ComputeDevice.Cpu && requested == DevicePrecision.Bf16)
            throw new MediatorDiTException($"{what} bf16 runs on a GPU only; the cpu computes in float32.");
        return requested ?? DefaultFor(device);
    }
}
