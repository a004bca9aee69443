using System.Text.Json;
using System.Text.RegularExpressions;

namespace MediatorDiT.IO;

/// <summary>
/// Reads a settings object (training, model, VAE, classifier config) from JSON text and turns the serializer's
/// failures into one sentence naming the source and the key: text that is not JSON at all gives its line and
/// byte; a value of the wrong kind gives the key, what it must be and what was found ("model_config.hidden_size
/// must be a whole number, found "96""), instead of the serializer's .NET type names.
/// </summary>
public static partial class ConfigJson
{
    /// <summary>
    /// The object in <paramref name="json"/>; <paramref name="source"/> (a file, or a checkpoint's metadata) and
    /// <paramref name="what"/> ("training config") name it in errors.
    /// </summary>
    /// <exception cref="MediatorDiTException">The text is empty, not JSON, or holds a value of the wrong kind.</exception>
    public static T Read<T>(string json, string source, string what, JsonSerializerOptions options) where T : class
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            if (string.IsNullOrWhiteSpace(json)) throw new MediatorDiTException($"{source}: the {what} is empty.");
            throw new MediatorDiTException(
                $"{source}: the {what} is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}).");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new MediatorDiTException($"{source}: the {what} must be a JSON object {{...}}, found {Describe(document.RootElement)}.");
            try
            {
                return document.Deserialize<T>(options) ?? throw new MediatorDiTException($"{source}: the {what} is empty.");
            }
            catch (JsonException e)
            {
                throw new MediatorDiTException($"{source}: the {what}'s {WrongValue(e, document.RootElement)}.");
            }
        }
    }

    /// <summary>"KEY must be EXPECTED, found FOUND" for a deserialization failure at <see cref="JsonException.Path"/>.</summary>
    internal static string WrongValue(JsonException e, JsonElement root)
    {
        string path = e.Path ?? "$";
        string key = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path == "$" ? "top level" : path.TrimStart('$');
        string found = Find(root, path) is { } value ? Describe(value) : "a value it cannot read";
        var converted = ConvertedTo().Match(e.Message);
        return converted.Success
            ? $"\"{key}\" must be {Expected(converted.Groups[1].Value)}, found {found}"
            : $"\"{key}\" has a value it cannot read, {found}";
    }

    /// <summary>The serializer's target type in words: "System.Int32" -> "a whole number".</summary>
    internal static string Expected(string typeName)
    {
        if (typeName.EndsWith("[]", StringComparison.Ordinal) || typeName.Contains("List`1") || typeName.Contains("IReadOnlyList`1"))
            return "a list [...]";
        string inner = typeName.StartsWith("System.Nullable`1[", StringComparison.Ordinal) ? typeName[18..^1] : typeName;
        return inner switch
        {
            "System.String" => "a string",
            "System.Int32" or "System.Int64" or "System.Int16" or "System.Byte" or "System.UInt32" or "System.UInt64" => "a whole number",
            "System.Double" or "System.Single" or "System.Decimal" => "a number",
            "System.Boolean" => "true or false",
            _ when inner.StartsWith("System.", StringComparison.Ordinal) => $"a {inner[7..]} value",
            _ => "an object {...}",
        };
    }

    /// <summary>A JSON value in words, short: a number or short string as written, else its kind.</summary>
    internal static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString() is { Length: <= 40 } s ? $"the string \"{s}\"" : "a long string",
        JsonValueKind.Number => value.GetRawText() is { Length: <= 40 } n ? n : "a long number",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "a list [...]",
        JsonValueKind.Object => "an object {...}",
        _ => "nothing",
    };

    /// <summary>The element at a serializer path ("$.a.b[2]", "$['odd key']"), or null where it does not lead anywhere.</summary>
    internal static JsonElement? Find(JsonElement root, string path)
    {
        JsonElement at = root;
        foreach (Match step in PathStep().Matches(path))
        {
            if (step.Groups["name"].Success || step.Groups["quoted"].Success)
            {
                string name = step.Groups["name"].Success ? step.Groups["name"].Value : step.Groups["quoted"].Value;
                if (at.ValueKind != JsonValueKind.Object || !at.TryGetProperty(name, out at)) return null;
            }
            else
            {
                int index = int.Parse(step.Groups["index"].Value, System.Globalization.CultureInfo.InvariantCulture);
                if (at.ValueKind != JsonValueKind.Array || index >= at.GetArrayLength()) return null;
                at = at[index];
            }
        }
        return at;
    }

    [GeneratedRegex(@"converted to ([^\s]+?)\.(?: Path|$)")]
    private static partial Regex ConvertedTo();

    [GeneratedRegex(@"\.(?<name>[^.\[]+)|\['(?<quoted>[^']*)'\]|\[(?<index>\d+)\]")]
    private static partial Regex PathStep();
}
