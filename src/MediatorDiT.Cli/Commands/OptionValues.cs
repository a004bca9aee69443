using System.Globalization;

namespace MediatorDiT.Cli.Commands;

/// <summary>Parsing of option values the commands share: comma-separated lists, numbers and enum names.</summary>
internal static class OptionValues
{
    /// <summary>The comma-separated items of <paramref name="s"/>, trimmed, empty ones dropped.</summary>
    public static string[] Split(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>An invariant-culture number; the error names <paramref name="option"/> when given.</summary>
    public static double Number(string s, string? option = null) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
            : throw new MediatorDiTException(option is null ? $"'{s}' is not a number." : $"{option}: '{s}' is not a number.");

    /// <summary>A member of <typeparamref name="T"/> by name, any letter case.</summary>
    public static T Enum<T>(string s, string option) where T : struct, System.Enum =>
        System.Enum.TryParse<T>(s, ignoreCase: true, out var v) ? v
            : throw new MediatorDiTException($"{option} must be one of {string.Join(", ", System.Enum.GetNames<T>())}, got '{s}'.");
}
