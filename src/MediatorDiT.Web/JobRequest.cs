using System.Globalization;
using System.Text.Json;
using MediatorDiT.Pipelines;

namespace MediatorDiT.Web;

/// <summary>
/// A validated generation request, as <c>POST /api/jobs</c> takes it:
/// <code>
/// {"classes": ["Trouser", "Bag"], "images": 2, "steps": 20, "guidance": 1, "seed": 0,
///  "schedule": {"kind": "dynamic", "ratios": [0.7, 0.3], "first": 3}, "compare": true}
/// </code>
/// Every field may be left out (docs/SERVE.md gives the defaults). The schedule is one of
/// <c>{"kind": "dynamic", "ratios": [...], "first": n}</c>, <c>{"kind": "single", "mediators": 16}</c> (one model
/// throughout) or <c>{"kind": "switch", "at": [0.3, 0.7]}</c> (fixed switch points as fractions of the steps).
/// </summary>
/// <param name="Labels">The classes, cycled over the images.</param>
/// <param name="Images">Images per run.</param>
/// <param name="Steps">Sampler steps (SiT: time points).</param>
/// <param name="Guidance">Classifier-free guidance scale (1: none).</param>
/// <param name="Seed">The seed of every image's noise (with its index).</param>
/// <param name="Schedule">The ladder's schedule.</param>
/// <param name="Compare">Also run the largest model alone on the same noise.</param>
public sealed record JobRequest(IReadOnlyList<int> Labels, int Images, int Steps, float Guidance, ulong Seed, ScheduleChoice Schedule, bool Compare)
{
    private static readonly string[] Fields = ["classes", "images", "steps", "guidance", "seed", "schedule", "compare"];

    /// <summary>The largest guidance scale accepted (the paper's figures use up to 4).</summary>
    public const float MaxGuidance = 20f;

    /// <summary>The pipeline options of the request's main run.</summary>
    public GenerationOptions ToOptions(int previewEvery) => new()
    {
        Labels = Labels,
        NumImages = Images,
        Steps = Steps,
        GuidanceScale = Guidance,
        Seed = Seed,
        Schedule = Schedule,
        BatchSize = Math.Min(Images, 16),
        PreviewEvery = previewEvery,
    };

    /// <summary>
    /// Reads and checks a request body against the served model and the limits; throws a
    /// <see cref="RequestRejectedException"/> naming the field for the first bad value.
    /// </summary>
    public static JobRequest Parse(ReadOnlySpan<byte> body, ServedModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        JsonDocument doc;
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 8 });
            doc = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw new RequestRejectedException(400, null, $"the request body is not valid JSON ({e.Message.TrimEnd('.')}).");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new RequestRejectedException(400, null, $"the request body must be a JSON object, found {Kind(root)}.");
            foreach (var property in root.EnumerateObject())
                if (!Fields.Contains(property.Name))
                    throw new RequestRejectedException(400, property.Name, $"unknown field \"{property.Name}\"; a job takes {string.Join(", ", Fields)}.");

            var limits = model.Limits;
            int[] labels = root.TryGetProperty("classes", out var classes) ? ParseClasses(classes, model) : Enumerable.Range(0, model.Classes.Count).ToArray();
            int images = root.TryGetProperty("images", out var imagesValue)
                ? Integer(imagesValue, "images", 1, limits.MaxImages, "images per job")
                : Math.Min(labels.Length, limits.MaxImages);
            int steps = root.TryGetProperty("steps", out var stepsValue)
                ? Integer(stepsValue, "steps", model.MinSteps, limits.MaxSteps, "steps")
                : model.DefaultSteps;
            float guidance = 1f;
            if (root.TryGetProperty("guidance", out var guidanceValue))
            {
                double g = Number(guidanceValue, "guidance");
                if (!(g >= 1 && g <= MaxGuidance))
                    throw new RequestRejectedException(400, "guidance", string.Create(CultureInfo.InvariantCulture,
                        $"\"guidance\" must be a scale from 1 (none) to {MaxGuidance}, got {g}."));
                guidance = (float)g;
            }
            ulong seed = 0;
            if (root.TryGetProperty("seed", out var seedValue) && !(seedValue.ValueKind == JsonValueKind.Number && seedValue.TryGetUInt64(out seed)))
                throw new RequestRejectedException(400, "seed", $"\"seed\" must be a whole number from 0 to {ulong.MaxValue}, got {seedValue.GetRawText()}.");
            var schedule = root.TryGetProperty("schedule", out var scheduleValue)
                ? ParseSchedule(scheduleValue, model, steps)
                : ScheduleChoice.Default;
            bool compare = false;
            if (root.TryGetProperty("compare", out var compareValue))
            {
                if (compareValue.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    throw new RequestRejectedException(400, "compare", $"\"compare\" must be true or false, got {compareValue.GetRawText()}.");
                compare = compareValue.GetBoolean();
                if (compare && !model.IsLadder)
                    throw new RequestRejectedException(400, "compare", "\"compare\" needs a ladder of two or more models; this server has one model.");
            }
            return new JobRequest(labels, images, steps, guidance, seed, schedule, compare);
        }
    }

    private static int[] ParseClasses(JsonElement value, ServedModel model)
    {
        if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() == 0)
            throw new RequestRejectedException(400, "classes", $"\"classes\" must be a non-empty array of class names or numbers, got {value.GetRawText()}.");
        if (value.GetArrayLength() > model.Limits.MaxImages)
            throw new RequestRejectedException(400, "classes", $"\"classes\" lists {value.GetArrayLength()} entries, more than the {model.Limits.MaxImages} images a job may make.");
        var labels = new List<int>();
        foreach (var entry in value.EnumerateArray())
        {
            if (entry.ValueKind == JsonValueKind.Number)
            {
                if (!entry.TryGetInt32(out int label) || label < 0 || label >= model.Classes.Count)
                    throw new RequestRejectedException(400, "classes", $"class {entry.GetRawText()} is not one of 0..{model.Classes.Count - 1}.");
                labels.Add(label);
            }
            else if (entry.ValueKind == JsonValueKind.String)
            {
                string name = entry.GetString()!;
                int label = -1;
                for (int c = 0; c < model.Classes.Count && label < 0; c++)
                    if (string.Equals(model.Classes[c], name, StringComparison.OrdinalIgnoreCase)) label = c;
                if (label < 0)
                    throw new RequestRejectedException(400, "classes", $"\"{Shorten(name)}\" is not a class of this model; it knows {string.Join(", ", model.Classes.Take(12))}{(model.Classes.Count > 12 ? ", ..." : "")}.");
                labels.Add(label);
            }
            else
            {
                throw new RequestRejectedException(400, "classes", $"\"classes\" holds class names or numbers, found {Kind(entry)} {entry.GetRawText()}.");
            }
        }
        return labels.ToArray();
    }

    private static ScheduleChoice ParseSchedule(JsonElement value, ServedModel model, int steps)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new RequestRejectedException(400, "schedule", $"\"schedule\" must be an object such as {{\"kind\": \"dynamic\"}}, found {Kind(value)}.");
        string kind = value.TryGetProperty("kind", out var kindValue) && kindValue.ValueKind == JsonValueKind.String ? kindValue.GetString()! : "";
        string[] allowed = kind switch
        {
            "dynamic" => ["kind", "ratios", "first"],
            "single" => ["kind", "mediators"],
            "switch" => ["kind", "at"],
            _ => throw new RequestRejectedException(400, "schedule.kind", $"\"schedule.kind\" must be \"dynamic\", \"single\" or \"switch\", got {(kindValue.ValueKind == JsonValueKind.Undefined ? "nothing" : kindValue.GetRawText())}."),
        };
        foreach (var property in value.EnumerateObject())
            if (!allowed.Contains(property.Name))
                throw new RequestRejectedException(400, "schedule." + property.Name, $"unknown field \"schedule.{property.Name}\"; a {kind} schedule takes {string.Join(", ", allowed)}.");
        int switches = model.Models.Count - 1;
        if (kind != "single" && switches == 0 && value.EnumerateObject().Count() > 1)
            throw new RequestRejectedException(400, "schedule", "this server has one model, so there is no schedule to set.");
        switch (kind)
        {
            case "single":
            {
                if (!value.TryGetProperty("mediators", out var m)) return new ScheduleChoice.Single();
                int mediators = m.ValueKind == JsonValueKind.Number && m.TryGetInt32(out int v) ? v : -1;
                int index = mediators >= 0 ? model.Mediators.ToList().IndexOf(mediators) : -1;
                if (index < 0)
                    throw new RequestRejectedException(400, "schedule.mediators", $"\"schedule.mediators\" must be one of the ladder's counts {string.Join(", ", model.Mediators)}, got {m.GetRawText()}.");
                return new ScheduleChoice.Single(index);
            }
            case "switch":
            {
                if (!value.TryGetProperty("at", out var at))
                    throw new RequestRejectedException(400, "schedule.at", $"a switch schedule needs \"at\": {switches} fractions of the steps, e.g. [0.3, 0.7].");
                double[] fractions = Fractions(at, "schedule.at", switches);
                for (int i = 1; i < fractions.Length; i++)
                    if (fractions[i] < fractions[i - 1])
                        throw new RequestRejectedException(400, "schedule.at", $"\"schedule.at\" must not decrease, got {Text(fractions[i - 1])} then {Text(fractions[i])}.");
                return new ScheduleChoice.Fixed(fractions);
            }
            default:
            {
                double[]? ratios = value.TryGetProperty("ratios", out var r) ? Fractions(r, "schedule.ratios", switches) : null;
                if (ratios is not null)
                    for (int i = 1; i < ratios.Length; i++)
                        if (ratios[i] > ratios[i - 1])
                            throw new RequestRejectedException(400, "schedule.ratios", $"\"schedule.ratios\" must not increase, got {Text(ratios[i - 1])} then {Text(ratios[i])}.");
                int? first = value.TryGetProperty("first", out var f) ? Integer(f, "schedule.first", 1, Math.Max(1, steps - 1), "reference steps (fewer than the steps)") : null;
                return new ScheduleChoice.Dynamic(ratios, first);
            }
        }
    }

    private static double[] Fractions(JsonElement value, string field, int count)
    {
        if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() != count)
            throw new RequestRejectedException(400, field, $"\"{field}\" must be an array of {count} numbers in [0, 1] (one per move up the ladder), got {Shorten(value.GetRawText())}.");
        var result = new double[count];
        int i = 0;
        foreach (var entry in value.EnumerateArray())
        {
            double v = Number(entry, field);
            if (!(v >= 0 && v <= 1))
                throw new RequestRejectedException(400, field, $"\"{field}\" holds numbers in [0, 1], got {Text(v)}.");
            result[i++] = v;
        }
        return result;
    }

    private static int Integer(JsonElement value, string field, int min, int max, string what)
    {
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long v))
            throw new RequestRejectedException(400, field, $"\"{field}\" must be a whole number, got {Shorten(value.GetRawText())}.");
        if (v < min || v > max)
            throw new RequestRejectedException(400, field, $"\"{field}\" must be from {min} to {max} ({what} this server allows), got {v}.");
        return (int)v;
    }

    private static double Number(JsonElement value, string field)
    {
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double v) || !double.IsFinite(v))
            throw new RequestRejectedException(400, field, $"\"{field}\" must be a number, got {Shorten(value.GetRawText())}.");
        return v;
    }

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private static string Text(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Echoed values stay short, so a huge string in a request does not come back in full.</summary>
    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";
}

/// <summary>A request the server refuses: the HTTP status, the request field at fault (if one is) and one sentence.</summary>
public sealed class RequestRejectedException(int status, string? field, string message) : Exception(message)
{
    /// <summary>The HTTP status code of the answer (400, 404, 409, 413, 415 or 429).</summary>
    public int Status { get; } = status;

    /// <summary>The request field at fault ("steps", "schedule.ratios"), or null.</summary>
    public string? Field { get; } = field;
}
