using System.CommandLine;
using MediatorDiT.Cuda;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Devices;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// The --device option the compute commands share: cpu (default), cuda or cuda:N. A value of another form is a parse
/// error; a CUDA device that this machine lacks (driver, cuBLAS, the device itself) is refused in one sentence saying
/// what was not found, before any work (docs/GPU.md). Sampling and the forward pass run there through MediatorDiT.Cuda
/// (<see cref="OpenModels(ParseResult, Option{string})"/>); the other commands refuse a usable GPU too (<see cref="Select"/>).
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

    /// <summary>
    /// The device given, for <paramref name="work"/> that runs on the CPU only in this build: the cpu, else
    /// <see cref="MediatorDiTException"/> ("--device cuda: no NVIDIA driver ...", or that the work does not run on the
    /// GPU yet).
    /// </summary>
    public static DeviceSelection Select(ParseResult parse, Option<string> option, string work)
    {
        var (device, what) = Parse(parse, option);
        DeviceAvailability.Require(device, work, what);
        return device;
    }

    /// <summary>
    /// The device given, for work that runs there (sampling, the forward pass), with the factory that evaluates the
    /// networks on it: null on the cpu; on cuda[:N] the device opened, or <see cref="MediatorDiTException"/> saying
    /// what this machine lacks. The caller disposes the factory after its last network call.
    /// </summary>
    public static DeviceModelFactory? OpenModels(ParseResult parse, Option<string> option)
    {
        var (device, what) = Parse(parse, option);
        return OpenModels(device, what);
    }

    /// <summary>The factory for <paramref name="device"/>: none on the cpu, a CUDA device opened otherwise.</summary>
    internal static DeviceModelFactory? OpenModels(DeviceSelection device, string what) =>
        device.Device == ComputeDevice.Cpu ? null : DeviceModelFactory.OpenCuda(device, what);

    /// <summary>
    /// <paramref name="context"/> on the device given and the factory of its networks there (see
    /// <see cref="OpenModels(ParseResult, Option{string})"/>), for the sampling commands' pipeline.
    /// </summary>
    public static (ComputeContext Compute, DeviceModelFactory? Models) ApplyForSampling(ComputeContext context, ParseResult parse, Option<string> option)
    {
        var (device, what) = Parse(parse, option);
        return (device.ApplyTo(context), OpenModels(device, what));
    }

    private static (DeviceSelection Device, string What) Parse(ParseResult parse, Option<string> option)
    {
        string text = parse.GetValue(option) ?? "cpu";
        return (DeviceSelection.Parse(text, "--device"), $"--device {text.Trim()}");
    }

    /// <summary>
    /// The device given, for training: null on the cpu; on cuda[:N] the device opened (its accelerator takes the
    /// trainer's <see cref="Cuda.Training.DeviceTrainingBackend"/>), or <see cref="MediatorDiTException"/> saying what
    /// this machine lacks. The caller disposes it after the run.
    /// </summary>
    public static (DeviceSelection Device, CudaDevice? Cuda) OpenForTraining(ParseResult parse, Option<string> option)
    {
        var (device, what) = Parse(parse, option);
        return (device, device.Device == ComputeDevice.Cpu ? null : CudaDevice.Open(device, what));
    }

    /// <summary><paramref name="context"/> on the device given (see <see cref="Select"/>).</summary>
    public static ComputeContext Apply(ComputeContext context, ParseResult parse, Option<string> option, string work) =>
        Select(parse, option, work).ApplyTo(context);
}
