using System.CommandLine;
using MediatorDiT.Diffusion;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// The options that pick SiT's sampler and the mediator schedule's distance, shared by the commands that
/// sample a ladder (`mdit sample`, `mdit search-thresholds`) so that both read the same words the same way.
/// </summary>
internal sealed class SamplerOptions
{
    public Option<int> First { get; } = new Option<int>("--first") { Description = "steps whose mean state change is the reference", DefaultValueFactory = _ => 3 }.AtLeast(1);
    public Option<string> Distance { get; } = new("--distance") { Description = "mae or mse", DefaultValueFactory = _ => "mae" };
    public Option<string> Mode { get; } = new("--mode") { Description = "sde or ode", DefaultValueFactory = _ => "sde" };
    public Option<string?> Method { get; } = new("--method") { Description = "sde: euler|heun; ode: euler|heun|dopri5" };
    public Option<int> Steps { get; } = new Option<int>("--steps") { Description = $"time points (2..{TimeGrid.MaxPoints})", DefaultValueFactory = _ => 50 }.TimePoints();
    public Option<string> LastStep { get; } = new("--last-step") { Description = "none, mean, tweedie, euler (SDE)", DefaultValueFactory = _ => "mean" };
    public Option<double> LastStepSize { get; } = new("--last-step-size") { DefaultValueFactory = _ => 0.04 };
    public Option<string> DiffusionForm { get; } = new("--diffusion-form") { Description = "constant, SBDM, sigma, linear, decreasing, increasing-decreasing", DefaultValueFactory = _ => "sigma" };
    public Option<float> CfgScale { get; } = new Option<float>("--cfg-scale") { Description = "classifier-free guidance scale (1 = none)", DefaultValueFactory = _ => 1f }.GuidanceScale();
    public Option<bool?> CfgAll { get; } = new("--cfg-all-channels")
    {
        Description = "guide all channels; 'false' for the official first 3 (default: first 3 on models of 4 or more channels, all on fewer)",
    };

    /// <summary>
    /// Refuses, naming the option, an explicit first-3 guidance choice a model of <paramref name="inChannels"/>
    /// channels cannot take (the pipeline chooses the guidance itself, <see cref="ClassifierFreeGuidance.Choose"/>).
    /// </summary>
    public void CheckGuidance(ParseResult p, int inChannels)
    {
        if (p.GetValue(CfgScale) > 1f && p.GetValue(CfgAll) == false && inChannels < ClassifierFreeGuidance.OfficialChannels)
            throw new MediatorDiTException(
                $"--cfg-all-channels false asks for guidance on the first {ClassifierFreeGuidance.OfficialChannels} channels but the model has only {inChannels}; use --cfg-all-channels (or leave it out) to guide all of them.");
    }

    /// <summary>The schedule's step-to-step distance named by --distance.</summary>
    public StateDistance ParseDistance(ParseResult p) => p.GetValue(Distance)!.ToLowerInvariant() switch
    {
        "mae" or "l1" => StateDistance.MeanAbsolute,
        "mse" => StateDistance.MeanSquared,
        var other => throw new MediatorDiTException($"--distance must be mae or mse, got '{other}'."),
    };

    /// <summary>True for --mode sde, false for ode; any other mode is refused.</summary>
    public bool IsSde(ParseResult p)
    {
        string mode = p.GetValue(Mode)!;
        if (mode.Equals("sde", StringComparison.OrdinalIgnoreCase)) return true;
        if (mode.Equals("ode", StringComparison.OrdinalIgnoreCase)) return false;
        throw new MediatorDiTException($"--mode must be sde or ode, got '{mode}'.");
    }

    /// <summary>
    /// The pipeline's settings for SiT's samplers: --mode, --method (default euler for the SDE, dopri5 for the
    /// ODE), --steps, --diffusion-form, --last-step(-size), --cfg-scale and --cfg-all-channels.
    /// </summary>
    public GenerationOptions Generation(ParseResult p, GenerationOptions options)
    {
        bool sde = IsSde(p);
        string? method = p.GetValue(Method);
        return options with
        {
            Sampler = sde ? SamplerKind.Sde : SamplerKind.Ode,
            Steps = p.GetValue(Steps),
            SdeMethod = sde ? OptionValues.Enum<SdeMethod>(method ?? "euler", "--method") : SdeMethod.Euler,
            OdeMethod = sde ? OdeMethod.Dopri5 : OptionValues.Enum<OdeMethod>(method ?? "dopri5", "--method"),
            DiffusionForm = OptionValues.Enum<DiffusionForm>(p.GetValue(DiffusionForm)!.Replace("-", ""), "--diffusion-form"),
            LastStep = OptionValues.Enum<LastStep>(p.GetValue(LastStep)!, "--last-step"),
            LastStepSize = p.GetValue(LastStepSize),
            GuidanceScale = p.GetValue(CfgScale),
            GuideAllChannels = p.GetValue(CfgAll),
        };
    }

    /// <summary>The schedule options --switch-at, --ratios, --first, --distance and --per-sample ask for.</summary>
    public ScheduleChoice Schedule(ParseResult p, string? switchAt, string? ratios, bool perSample, int? first = null)
    {
        if (switchAt is not null) return new ScheduleChoice.Fixed(OptionValues.Split(switchAt).Select(v => OptionValues.Number(v, "--switch-at")).ToArray());
        return new ScheduleChoice.Dynamic(
            ratios is null ? null : OptionValues.Split(ratios).Select(v => OptionValues.Number(v, "--ratios")).ToArray(),
            first ?? (p.GetResult(First) is { Implicit: false } ? p.GetValue(First) : null),
            ParseDistance(p), perSample ? DecisionScope.PerSample : DecisionScope.BatchMean);
    }
}
