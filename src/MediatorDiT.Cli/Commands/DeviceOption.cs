using System.CommandLine;
using MediatorDiT.Devices;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// The --device option the compute commands share: cpu (default), cuda or cuda:N. A value of another form is a parse
/// error; a CUDA device that this machine lacks (driver, cuBLAS, the device itself) is refused in one sentence saying
/// what was not found, before any work (docs/GPU.md).
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
    /// The device given, after checking it can run <paramref name="work"/> here; throws <see cref="MediatorDiTException"/>
    /// ("--device cuda: no NVIDIA driver ...") otherwise.
    /// </summary>
    public static DeviceSelection Select(ParseResult parse, Option<string> option, string work)
    {
        string text = parse.GetValue(option) ?? "cpu";
        var device = DeviceSelection.Parse(text, "--device");
        DeviceAvailability.Require(device, work, $"--device {text.Trim()}");
        return device;
    }

    /// <summary><paramref name="context"/> on the device given (see <see cref="Select"/>).</summary>
    public static ComputeContext Apply(ComputeContext context, ParseResult parse, Option<string> option, string work) =>
        Select(parse, option, work).ApplyTo(context);
}
