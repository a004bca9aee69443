using System.CommandLine;
using System.Globalization;
using MediatorDiT.IO;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// --max-image-pixels and --max-array-elements for the commands that read images or arrays, mapped onto
/// <see cref="InputLimits"/>: the option, else the environment variable, else the library default.
/// </summary>
internal sealed class InputLimitOptions
{
    private readonly Option<long?> _pixels = new("--max-image-pixels")
    {
        Description = $"refuse images (PNG, JPEG, WebP) whose header declares more pixels (default ${InputLimits.ImagePixelsVariable}, else {Count(InputLimits.DefaultMaxImagePixels)})",
    };

    private readonly Option<long?>? _elements;

    /// <summary>Adds the options to <paramref name="command"/>; the array option only when it reads arrays.</summary>
    public InputLimitOptions(Command command, bool arrays)
    {
        command.Options.Add(_pixels);
        if (!arrays) return;
        _elements = new Option<long?>("--max-array-elements")
        {
            Description = $"refuse .npz/.npy arrays declaring more elements (default ${InputLimits.ArrayElementsVariable}, else {Count(InputLimits.DefaultMaxArrayElements)})",
        };
        command.Options.Add(_elements);
    }

    public InputLimits Read(ParseResult parse) => new InputLimits
    {
        MaxImagePixels = Value(parse.GetValue(_pixels), "--max-image-pixels", InputLimits.ImagePixelsVariable, InputLimits.DefaultMaxImagePixels),
        MaxArrayElements = _elements is null ? InputLimits.DefaultMaxArrayElements
            : Value(parse.GetValue(_elements), "--max-array-elements", InputLimits.ArrayElementsVariable, InputLimits.DefaultMaxArrayElements),
    };

    private static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static long Value(long? given, string option, string variable, long fallback)
    {
        if (given is long v)
            return v >= 1 ? v : throw new MediatorDiTException($"{option} must be a positive number, got {v}.");
        string? text = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(text)) return fallback;
        return long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long fromEnvironment) && fromEnvironment >= 1
            ? fromEnvironment
            : throw new MediatorDiTException($"${variable} must be a positive whole number, but is '{text}'.");
    }
}
