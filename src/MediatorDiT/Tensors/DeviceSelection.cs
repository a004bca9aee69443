using System.Globalization;

namespace MediatorDiT.Tensors;

/// <summary>
/// A device as a user names it: "cpu", "cuda" (the first GPU) or "cuda:N". <see cref="Parse"/> accepts any letter
/// case and surrounding blanks and refuses anything else with one sentence naming the accepted forms.
/// </summary>
/// <param name="Device">The kind of device.</param>
/// <param name="Index">Which device of that kind; always 0 for the CPU.</param>
public readonly record struct DeviceSelection(ComputeDevice Device, int Index)
{
    /// <summary>The CPU.</summary>
    public static DeviceSelection Cpu => new(ComputeDevice.Cpu, 0);

    /// <summary>The accepted forms, for help texts and errors.</summary>
    public const string Forms = "cpu, cuda or cuda:N (N = 0, 1, ...)";

    /// <summary>
    /// Parses "cpu", "cuda" or "cuda:N"; throws <see cref="MediatorDiTException"/> with one sentence otherwise.
    /// <paramref name="what"/> names the setting in that sentence (e.g. "--device").
    /// </summary>
    public static DeviceSelection Parse(string? text, string what = "the device") =>
        TryParse(text, out var selection) ? selection
            : throw new MediatorDiTException($"{what} must be {Forms}, got '{text}'.");

    /// <summary>As <see cref="Parse"/>, without throwing.</summary>
    public static bool TryParse(string? text, out DeviceSelection selection)
    {
        selection = Cpu;
        if (text is null) return false;
        string s = text.Trim().ToLowerInvariant();
        if (s == "cpu") return true;
        if (s == "cuda")
        {
            selection = new DeviceSelection(ComputeDevice.Cuda, 0);
            return true;
        }
        if (s.StartsWith("cuda:", StringComparison.Ordinal)
            && s.Length > 5 && s[5..].All(char.IsAsciiDigit)
            && int.TryParse(s[5..], NumberStyles.None, CultureInfo.InvariantCulture, out int index))
        {
            selection = new DeviceSelection(ComputeDevice.Cuda, index);
            return true;
        }
        return false;
    }

    /// <summary>Sets this device on <paramref name="context"/>.</summary>
    public ComputeContext ApplyTo(ComputeContext context) => context with { Device = Device, DeviceIndex = Index };

    /// <summary>"cpu" or "cuda:N".</summary>
    public override string ToString() => Device == ComputeDevice.Cpu ? "cpu" : $"cuda:{Index}";
}
