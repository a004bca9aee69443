using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;
using MediatorDiT.Sampling;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// Parsing of option values the commands share: comma-separated lists, numbers and enum names; and the
/// range checks attached to numeric options, so that every command refuses the same bad values with the
/// same sentence, as a parse error before any work.
/// </summary>
internal static class OptionValues
{
    /// <summary>Most compute threads an option accepts: far above any machine's cores, low enough that per-thread buffers stay small.</summary>
    public const int MaxThreads = 1024;

    /// <summary>Largest image side in pixels the image options accept (the VAE's mid-block attention grows with the fourth power of it).</summary>
    public const int MaxImageSize = 1024;

    /// <summary>The comma-separated items of <paramref name="s"/>, trimmed, empty ones dropped.</summary>
    public static string[] Split(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// The weight files a command runs: the files of <c>--ladder W1,W2,...</c> or the one of <c>--checkpoint W</c>, never
    /// both; with neither, <paramref name="whenNeither"/>'s files (e.g. the shipped ladder), or an error where it is null.
    /// </summary>
    public static string[] ModelPaths(string? checkpoint, string? ladder, Func<string[]>? whenNeither = null)
    {
        if (checkpoint is not null && ladder is not null)
            throw new MediatorDiTException($"give --checkpoint W or --ladder W1,W2,..., not both (got --checkpoint {checkpoint} and --ladder {ladder}).");
        if (ladder is not null)
        {
            string[] files = Split(ladder);
            return files.Length > 0 ? files : throw new MediatorDiTException($"--ladder names no weight files (got '{ladder}'); give W1,W2,... with increasing mediator counts.");
        }
        if (checkpoint is not null) return [checkpoint];
        return whenNeither?.Invoke() ?? throw new MediatorDiTException("give --checkpoint W or --ladder W1,W2,...");
    }

    /// <summary>An invariant-culture number; the error names <paramref name="option"/> when given.</summary>
    public static double Number(string s, string? option = null) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
            : throw new MediatorDiTException(option is null ? $"'{s}' is not a number." : $"{option}: '{s}' is not a number.");

    /// <summary>An invariant-culture whole number in int's range; the error names <paramref name="option"/> and says what was expected.</summary>
    public static int Integer(string s, string option, string expected = "whole numbers") =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
            : throw new MediatorDiTException(long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out _) || BigInteger.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
                ? $"{option} expects {expected}, but '{s}' is out of range (at most {int.MaxValue})."
                : $"{option} expects {expected}, but '{s}' is not a whole number.");

    /// <summary>A comma-separated list of whole numbers (see <see cref="Integer"/>).</summary>
    public static int[] Integers(string s, string option, string expected = "comma-separated whole numbers") =>
        Split(s).Select(v => Integer(v, option, expected)).ToArray();

    /// <summary>A member of <typeparamref name="T"/> by name, any letter case.</summary>
    public static T Enum<T>(string s, string option) where T : struct, System.Enum =>
        System.Enum.TryParse<T>(s, ignoreCase: true, out var v) ? v
            : throw new MediatorDiTException($"{option} must be one of {string.Join(", ", System.Enum.GetNames<T>())}, got '{s}'.");

    /// <summary>
    /// Refuses a given value for which <paramref name="ok"/> is false with "OPTION must be EXPECTED, got VALUE."
    /// as a parse error (one line, exit 1, before the command runs). Defaults are not checked.
    /// </summary>
    public static Option<T> Require<T>(this Option<T> option, Func<T, bool> ok, string expected)
    {
        option.Validators.Add(result =>
        {
            if (result.Implicit || !TryGetValue(result, out T value)) return;
            if (!ok(value)) result.AddError($"{option.Name} must be {expected}, got {Format(value)}.");
        });
        return option;
    }

    /// <inheritdoc cref="Require{T}(Option{T}, Func{T, bool}, string)"/>
    public static Option<T?> Require<T>(this Option<T?> option, Func<T, bool> ok, string expected) where T : struct
    {
        option.Validators.Add(result =>
        {
            if (result.Implicit || !TryGetValue(result, out T? value) || value is not T v) return;
            if (!ok(v)) result.AddError($"{option.Name} must be {expected}, got {Format(v)}.");
        });
        return option;
    }

    /// <summary>A value of at least <paramref name="min"/>; NaN is refused.</summary>
    public static Option<T> AtLeast<T>(this Option<T> option, T min) where T : struct, INumber<T> =>
        option.Require(v => v >= min, $"at least {Format(min)}");

    /// <inheritdoc cref="AtLeast{T}(Option{T}, T)"/>
    public static Option<T?> AtLeast<T>(this Option<T?> option, T min) where T : struct, INumber<T> =>
        option.Require<T>(v => v >= min, $"at least {Format(min)}");

    /// <summary>A value in [<paramref name="min"/>, <paramref name="max"/>]; NaN is refused.</summary>
    public static Option<T> InRange<T>(this Option<T> option, T min, T max, string? what = null) where T : struct, INumber<T> =>
        option.Require(v => v >= min && v <= max, $"{what}{(what is null ? "" : " ")}in {Format(min)}..{Format(max)}");

    /// <inheritdoc cref="InRange{T}(Option{T}, T, T, string?)"/>
    public static Option<T?> InRange<T>(this Option<T?> option, T min, T max, string? what = null) where T : struct, INumber<T> =>
        option.Require<T>(v => v >= min && v <= max, $"{what}{(what is null ? "" : " ")}in {Format(min)}..{Format(max)}");

    /// <summary>--threads: 1 to <see cref="MaxThreads"/> (0 or a negative count used to be taken as 1 silently).</summary>
    public static Option<int?> Threads(this Option<int?> option) => option.Require<int>(v => v is >= 1 and <= MaxThreads, ThreadsExpected);

    /// <inheritdoc cref="Threads(Option{int?})"/>
    public static Option<int> Threads(this Option<int> option) => option.Require(v => v is >= 1 and <= MaxThreads, ThreadsExpected);

    private static readonly string ThreadsExpected = $"at least 1 (and at most {MaxThreads})";

    /// <summary>--batch-size: at least 1 (0 or less used to be taken as 1 silently).</summary>
    public static Option<int> BatchSize(this Option<int> option) => option.AtLeast(1);

    /// <inheritdoc cref="BatchSize(Option{int})"/>
    public static Option<int?> BatchSize(this Option<int?> option) => option.AtLeast(1);

    /// <summary>Sampler time points: 2 to <see cref="TimeGrid.MaxPoints"/>.</summary>
    public static Option<int> TimePoints(this Option<int> option) => option.InRange(2, TimeGrid.MaxPoints, "a count of time points");

    /// <summary>A guidance scale: a finite number of at least 1 (NaN used to pass as "no guidance").</summary>
    public static Option<float> GuidanceScale(this Option<float> option) =>
        option.Require(v => v >= 1f && float.IsFinite(v), "a finite number of at least 1");

    /// <inheritdoc cref="GuidanceScale(Option{float})"/>
    public static Option<float?> GuidanceScale(this Option<float?> option) =>
        option.Require<float>(v => v >= 1f && float.IsFinite(v), "a finite number of at least 1");

    /// <summary>An image side in pixels: a positive multiple of <paramref name="multiple"/>, at most <see cref="MaxImageSize"/>.</summary>
    public static Option<int> ImageSize(this Option<int> option, int multiple = 8) =>
        option.Require(v => v >= multiple && v <= MaxImageSize && v % multiple == 0, ImageSizeExpected(multiple));

    /// <inheritdoc cref="ImageSize(Option{int}, int)"/>
    public static Option<int?> ImageSize(this Option<int?> option, int multiple = 8) =>
        option.Require<int>(v => v >= multiple && v <= MaxImageSize && v % multiple == 0, ImageSizeExpected(multiple));

    private static string ImageSizeExpected(int multiple) =>
        multiple == 1 ? $"a size in pixels in 1..{MaxImageSize}" : $"a multiple of {multiple} in {multiple}..{MaxImageSize} (pixels)";

    private static bool TryGetValue<T>(OptionResult result, out T value)
    {
        // A token that did not convert already carries System.CommandLine's own error.
        try
        {
            value = result.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }

    private static string Format<T>(T value) => value switch
    {
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
        _ => value?.ToString() ?? "nothing",
    };
}
