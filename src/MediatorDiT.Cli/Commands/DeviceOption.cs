using System.CommandLine;
using MediatorDiT.Cuda;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Devices;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// The --device option the compute commands share: cpu (default), cuda or cuda:N. A value of another form is a parse
/// error; a CUDA device that this machine lacks (driver, cuBLAS, the device itself) is refused in one sentence saying
/// what was not found, before any work (docs/GPU.md). Every command that takes it runs there through MediatorDiT.Cuda:
/// the sampling commands through a device model factory (<see cref="ApplyForSampling"/>), training and the bench on the
/// opened device (<see cref="OpenForTraining"/>, <see cref="OpenDevice"/>). They also take --precision
/// (<see cref="CreatePrecision"/>): fp32 or bf16 matrix products there, default bf16 on a GPU and fp32 on the cpu, which
/// refuses bf16 (<see cref="DevicePrecisions.For"/>).
/// </summary>
internal static class DeviceOption
{
    /// <summary>A new --device option; <paramref name="work"/> says what runs there, for the help text.</summary>
    public static Option<string> Create(string work = "the work")
    {
        var option = new Option<string>("--device")
        {
            Description = $"where {work} runs: {DeviceSelection.Forms} (default cpu; docs/GPU.md)",
            DefaultValueFactory = _ => "cpu",
        };
        option.Validators.Add(result =>
        {
            if (result.Implicit) return;
            string? text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : null;
            if (!DeviceSelection.TryParse(text, out _)) result.AddError($"--device must be {DeviceSelection.Forms}, got '{text}'.");
        });
        return option;
    }

    /// <summary>A new --precision option: the device's matrix products in fp32 or bf16 (no value: the device's default).</summary>
    public static Option<string> CreatePrecision()
    {
        var option = new Option<string>("--precision")
        {
            Description = $"the device's matrix products: {DevicePrecisions.Forms} (default bf16 on cuda, fp32 on the cpu, which computes in float32 only; docs/GPU.md)",
        };
        option.Validators.Add(result =>
        {
            string? text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : null;
            if (!DevicePrecisions.TryParse(text, out _)) result.AddError($"--precision must be {DevicePrecisions.Forms}, got '{text}'.");
        });
        return option;
    }

    /// <summary>
    /// The device given, for work that runs there (sampling, the forward pass), with the factory that evaluates the
    /// networks on it: null on the cpu; on cuda[:N] the device opened, or <see cref="MediatorDiTException"/> saying
    /// what this machine lacks (or that the cpu takes no bf16). The caller disposes the factory after its last network call.
    /// </summary>
    public static DeviceModelFactory? OpenModels(ParseResult parse, Option<string> option, Option<string> precision)
    {
        var (device, what, p) = Parse(parse, option, precision);
        return OpenModels(device, what, p);
    }

    /// <summary>The factory for <paramref name="device"/>: none on the cpu, a CUDA device opened otherwise, its products at <paramref name="precision"/>.</summary>
    internal static DeviceModelFactory? OpenModels(DeviceSelection device, string what, DevicePrecision precision = DevicePrecision.Bf16) =>
        device.Device == ComputeDevice.Cpu ? null : DeviceModelFactory.OpenCuda(device, what, precision);

    /// <summary>
    /// <paramref name="context"/> on the device given and the factory of its networks there (see
    /// <see cref="OpenModels(ParseResult, Option{string}, Option{string})"/>), for the sampling commands' pipeline.
    /// </summary>
    public static (ComputeContext Compute, DeviceModelFactory? Models) ApplyForSampling(ComputeContext context, ParseResult parse, Option<string> option,
        Option<string> precision)
    {
        var (device, what, p) = Parse(parse, option, precision);
        return (device.ApplyTo(context), OpenModels(device, what, p));
    }

    private static (DeviceSelection Device, string What) Parse(ParseResult parse, Option<string> option)
    {
        string text = parse.GetValue(option) ?? "cpu";
        return (DeviceSelection.Parse(text, "--device"), $"--device {text.Trim()}");
    }

    /// <summary>The device and the precision given (or the device's default); bf16 on the cpu is refused in one sentence.</summary>
    private static (DeviceSelection Device, string What, DevicePrecision Precision) Parse(ParseResult parse, Option<string> option, Option<string> precision)
    {
        var (device, what) = Parse(parse, option);
        DevicePrecision? requested = parse.GetValue(precision) is string text ? DevicePrecisions.Parse(text, "--precision") : null;
        return (device, what, DevicePrecisions.For(device.Device, requested, "--precision"));
    }

    /// <summary>
    /// The device given, for training: null on the cpu; on cuda[:N] the device opened (its accelerator takes the
    /// trainer's <see cref="Cuda.Training.DeviceTrainingBackend"/>, at the precision returned), or
    /// <see cref="MediatorDiTException"/> saying what this machine lacks (or that the cpu takes no bf16). The caller
    /// disposes it after the run.
    /// </summary>
    public static (DeviceSelection Device, CudaDevice? Cuda, DevicePrecision Precision) OpenForTraining(ParseResult parse, Option<string> option,
        Option<string> precision)
    {
        var (device, what, p) = Parse(parse, option, precision);
        return (device, device.Device == ComputeDevice.Cpu ? null : CudaDevice.Open(device, what), p);
    }

    /// <summary>
    /// The device given, opened for work that runs its own device code (the bench): null on the cpu; on cuda[:N] the
    /// device opened, at the precision returned in <paramref name="precisionUsed"/> (the device's default unless given),
    /// or <see cref="MediatorDiTException"/> saying what this machine lacks (or that the cpu takes no bf16). The caller
    /// disposes it.
    /// </summary>
    public static CudaDevice? OpenDevice(ParseResult parse, Option<string> option, Option<string> precision, out DevicePrecision precisionUsed)
    {
        var (device, cuda, p) = OpenForTraining(parse, option, precision);
        precisionUsed = p;
        return device.Device == ComputeDevice.Cpu ? null : cuda;
    }

}
