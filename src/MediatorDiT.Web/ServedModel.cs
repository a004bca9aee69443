using MediatorDiT.Models;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;

namespace MediatorDiT.Web;

/// <summary>
/// What the page and API clients need to know of the served pipeline: its models (cheapest first) and their
/// mediator counts, the classes by name, the image size, the defaults a request falls back on and the limits.
/// Serialised as the answer of <c>GET /api/info</c>.
/// </summary>
public sealed record ServedModel
{
    /// <summary>Short model names, cheapest first ("m4", "m16", "full").</summary>
    public required IReadOnlyList<string> Models { get; init; }

    /// <summary>Mediator count of each model (0 for full attention).</summary>
    public required IReadOnlyList<int> Mediators { get; init; }

    /// <summary>"SiT" or "DiT".</summary>
    public required string Family { get; init; }

    /// <summary>Side of the generated images in pixels.</summary>
    public required int ImageSize { get; init; }

    /// <summary>Class names, label c = Classes[c].</summary>
    public required IReadOnlyList<string> Classes { get; init; }

    /// <summary>The sampler a job runs ("sde euler" for SiT, "ancestral" for DiT).</summary>
    public required string Sampler { get; init; }

    /// <summary>Steps when a request gives none.</summary>
    public required int DefaultSteps { get; init; }

    /// <summary>The fewest steps the sampler takes.</summary>
    public required int MinSteps { get; init; }

    /// <summary>The dynamic schedule's switch ratios and reference steps when a request gives none (empty for one model).</summary>
    public required IReadOnlyList<double> DefaultRatios { get; init; }

    /// <inheritdoc cref="DefaultRatios"/>
    public required int DefaultFirst { get; init; }

    /// <summary>Where the default schedule comes from: the ladder's schedule.json, or "defaults".</summary>
    public required string ScheduleSource { get; init; }

    /// <summary>The server's limits on one job and on the queue.</summary>
    public required ServedLimits Limits { get; init; }

    /// <summary>True for a ladder of two or more models (the schedule and compare mode apply).</summary>
    public bool IsLadder => Models.Count > 1;

    /// <summary>Describes <paramref name="pipeline"/> under <paramref name="options"/>.</summary>
    public static ServedModel Of(DiffusionPipeline pipeline, ServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(options);
        int n = pipeline.Models.Count;
        bool sit = pipeline.Config.Family == ModelFamily.SiT;
        var names = options.ClassNames is { } given && given.Count == pipeline.NumClasses
            ? given
            : Enumerable.Range(0, pipeline.NumClasses).Select(c => $"class {c}").ToArray();
        return new ServedModel
        {
            Models = pipeline.ModelNames,
            Mediators = pipeline.Models.Select(m => AttentionKinds.MediatorCount(m.Config)).ToArray(),
            Family = pipeline.Config.Family.ToString(),
            ImageSize = pipeline.ImageSize,
            Classes = names,
            Sampler = sit ? "sde euler" : "ancestral",
            DefaultSteps = Math.Min(options.MaxSteps, sit ? GenerationOptions.DefaultTransportSteps : GenerationOptions.DefaultDiffusionSteps),
            MinSteps = sit ? 2 : 1,
            DefaultRatios = n > 1 ? pipeline.StoredSchedule?.Ratios ?? AdaptiveModelSchedule.DefaultRatios(n) : [],
            DefaultFirst = pipeline.StoredSchedule?.First ?? AdaptiveModelSchedule.DefaultReferenceSteps,
            ScheduleSource = pipeline.StoredSchedulePath is { } path ? Path.GetFileName(Path.GetDirectoryName(path)) + "/" + Path.GetFileName(path) : "defaults",
            Limits = new ServedLimits(options.MaxImages, options.MaxSteps, options.MaxQueue),
        };
    }
}

/// <summary>Images and steps one job may ask for, and jobs that may wait behind the running one.</summary>
/// <param name="MaxImages">Images per job (per run in compare mode).</param>
/// <param name="MaxSteps">Sampler steps per job.</param>
/// <param name="MaxQueue">Jobs that may wait.</param>
public sealed record ServedLimits(int MaxImages, int MaxSteps, int MaxQueue);
