using System.CommandLine;
using MediatorDiT.Cuda;
using MediatorDiT.Cuda.Models;
using MediatorDiT.Cuda.Sampling;
using MediatorDiT.Devices;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// The options the compute commands share (docs/GPU.md): --device, cpu (default), cuda or cuda:N; --precision, the
/// device's matrix products in fp32 or bf16 (default bf16 on a GPU and fp32 on the cpu, which refuses bf16,
/// <see cref="DevicePrecisions.For"/>); --full-attention, full attention's core on a GPU as tiles of products (default)
/// or the fused kernels (<see cref="FullAttentionCore"/>; bf16 only, refused on the cpu). A value of another form is a
/// parse error; a combination that cannot run, or a CUDA device this machine lacks (driver, cuBLAS, the device itself),
/// is refused in one sentence saying why, before any work. Every command that takes them runs on the device through
/// MediatorDiT.Cuda: the sampling commands through a device model factory (<see cref="ApplyForSampling"/>), training
/// and the bench on the opened device (<see cref="OpenForTraining"/>, <see cref="OpenDevice"/>).
/// </summary>
internal sealed class DeviceOptions
{
    /// <summary>The three options; <paramref name="work"/> says what runs on the device, for the help text.</summary>
    public DeviceOptions(string work = "the work")
    {
        Device = new Option<string>("--device")
        {
            Description = $"where {work} runs: {DeviceSelection.Forms} (default cpu; docs/GPU.md)",
            DefaultValueFactory = _ => "cpu",
        };
        Device.Validators.Add(result =>
        {
            if (result.Implicit) return;
            string? text = LastToken(result);
            if (!DeviceSelection.TryParse(text, out _)) result.AddError($"--device must be {DeviceSelection.Forms}, got '{text}'.");
        });
        Precision = new Option<string>("--precision")
        {
            Description = $"the device's matrix products: {DevicePrecisions.Forms} (default bf16 on cuda, fp32 on the cpu, which computes in float32 only; docs/GPU.md)",
        };
        Precision.Validators.Add(result =>
        {
            string? text = LastToken(result);
            if (!DevicePrecisions.TryParse(text, out _)) result.AddError($"--precision must be {DevicePrecisions.Forms}, got '{text}'.");
        });
        FullAttention = new Option<string>("--full-attention")
        {
            Description = $"full attention's core on the device: {FullAttentionCores.Forms} (default tiles; fused: bf16 on compute capability 8.0 or later; docs/GPU.md)",
        };
        FullAttention.Validators.Add(result =>
        {
            string? text = LastToken(result);
            if (!FullAttentionCores.TryParse(text, out _)) result.AddError($"--full-attention must be {FullAttentionCores.Forms}, got '{text}'.");
        });
    }

    /// <summary>--device.</summary>
    public Option<string> Device { get; }

    /// <summary>--precision (no value: the device's default).</summary>
    public Option<string> Precision { get; }

    /// <summary>--full-attention (no value: the tiles).</summary>
    public Option<string> FullAttention { get; }

    /// <summary>Adds the three options to <paramref name="command"/>; returns it.</summary>
    public Command AddTo(Command command)
    {
        command.Options.Add(Device);
        command.Options.Add(Precision);
        command.Options.Add(FullAttention);
        return command;
    }

    private static string? LastToken(System.CommandLine.Parsing.OptionResult result) => result.Tokens.Count > 0 ? result.Tokens[^1].Value : null;

    /// <summary>
    /// The settings given: the device, the precision (or the device's default) and the full-attention core. bf16 on the
    /// cpu, the fused core on the cpu and the fused core with fp32 products are refused in one sentence.
    /// </summary>
    /// <exception cref="MediatorDiTException">A setting cannot run on the device given.</exception>
    public DeviceSettings Parse(ParseResult parse)
    {
        string text = parse.GetValue(Device) ?? "cpu";
        var device = DeviceSelection.Parse(text, "--device");
        DevicePrecision? requested = parse.GetValue(Precision) is string p ? DevicePrecisions.Parse(p, "--precision") : null;
        var precision = DevicePrecisions.For(device.Device, requested, "--precision");
        var core = parse.GetValue(FullAttention) is string f ? FullAttentionCores.Parse(f, "--full-attention") : FullAttentionCore.Tiles;
        if (core == FullAttentionCore.Fused && device.Device == ComputeDevice.Cpu)
            throw new MediatorDiTException("--full-attention fused runs on a GPU only; the cpu computes full attention in its own kernels.");
        if (core == FullAttentionCore.Fused && precision != DevicePrecision.Bf16)
            throw new MediatorDiTException($"--full-attention fused runs bf16 products only; --precision is {precision.Name()}.");
        return new DeviceSettings(device, $"--device {text.Trim()}", precision, core);
    }

    /// <summary>
    /// The device given, for work that runs there (sampling, the forward pass), with the factory that evaluates the
    /// networks on it: null on the cpu; on cuda[:N] the device opened, or <see cref="MediatorDiTException"/> saying
    /// what this machine lacks (or which setting cannot run). The caller disposes the factory after its last network call.
    /// </summary>
    public DeviceModelFactory? OpenModels(ParseResult parse) => OpenModels(Parse(parse));

    /// <summary>The factory for <paramref name="settings"/>: none on the cpu, a CUDA device opened otherwise.</summary>
    internal static DeviceModelFactory? OpenModels(DeviceSettings settings) =>
        settings.Device.Device == ComputeDevice.Cpu ? null
            : DeviceModelFactory.OpenCuda(settings.Device, settings.What, settings.Precision, settings.FullAttention);

    /// <summary>
    /// <paramref name="context"/> on the device given and the factory of its networks there (see
    /// <see cref="OpenModels(ParseResult)"/>), for the sampling commands' pipeline.
    /// </summary>
    public (ComputeContext Compute, DeviceModelFactory? Models) ApplyForSampling(ComputeContext context, ParseResult parse)
    {
        var settings = Parse(parse);
        return (settings.Device.ApplyTo(context), OpenModels(settings));
    }

    /// <summary>
    /// The settings given, for training, and the device: null on the cpu; on cuda[:N] the device opened (its
    /// accelerator takes the trainer's <see cref="Cuda.Training.DeviceTrainingBackend"/> with these settings), or
    /// <see cref="MediatorDiTException"/> saying what this machine lacks (or which setting cannot run). The caller
    /// disposes it after the run.
    /// </summary>
    public (DeviceSettings Settings, CudaDevice? Cuda) OpenForTraining(ParseResult parse)
    {
        var settings = Parse(parse);
        if (settings.Device.Device == ComputeDevice.Cpu) return (settings, null);
        var cuda = CudaDevice.Open(settings.Device, settings.What);
        try
        {
            settings.FullAttention.Check(cuda.Accelerator, settings.Precision); // the card's compute capability
        }
        catch
        {
            cuda.Dispose();
            throw;
        }
        return (settings, cuda);
    }

    /// <summary>
    /// The device given, opened for work that runs its own device code (the bench): null on the cpu; as
    /// <see cref="OpenForTraining"/> otherwise, with the settings in <paramref name="settings"/>. The caller disposes it.
    /// </summary>
    public CudaDevice? OpenDevice(ParseResult parse, out DeviceSettings settings)
    {
        (settings, var cuda) = OpenForTraining(parse);
        return cuda;
    }
}

/// <summary>What the shared device options gave: the device (and its words for errors, e.g. "--device cuda:1"), the precision, the full-attention core.</summary>
internal sealed record DeviceSettings(DeviceSelection Device, string What, DevicePrecision Precision, FullAttentionCore FullAttention);
