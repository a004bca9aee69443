using System.CommandLine;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// The options that pick SiT's sampler and the mediator schedule's distance, shared by the commands that
/// sample a ladder (`mdit sample`, `mdit search-thresholds`) so that both read the same words the same way.
/// </summary>
internal sealed class SamplerOptions
{
    public Option<int> First { get; } = new("--first") { Description = "steps whose mean state change is the reference", DefaultValueFactory = _ => 3 };
    public Option<string> Distance { get; } = new("--distance") { Description = "mae or mse", DefaultValueFactory = _ => "mae" };
    public Option<string> Mode { get; } = new("--mode") { Description = "sde or ode", DefaultValueFactory = _ => "sde" };
    public Option<string?> Method { get; } = new("--method") { Description = "sde: euler|heun; ode: euler|heun|dopri5" };
    public Option<int> Steps { get; } = new("--steps") { Description = "time points", DefaultValueFactory = _ => 50 };
    public Option<string> LastStep { get; } = new("--last-step") { Description = "none, mean, tweedie, euler (SDE)", DefaultValueFactory = _ => "mean" };
    public Option<double> LastStepSize { get; } = new("--last-step-size") { DefaultValueFactory = _ => 0.04 };
    public Option<string> DiffusionForm { get; } = new("--diffusion-form") { Description = "constant, SBDM, sigma, linear, decreasing, increasing-decreasing", DefaultValueFactory = _ => "sigma" };
    public Option<float> CfgScale { get; } = new("--cfg-scale") { Description = "classifier-free guidance scale (1 = none)", DefaultValueFactory = _ => 1f };
    public Option<bool> CfgAll { get; } = new("--cfg-all-channels") { Description = "guide all channels instead of the official first 3" };
}
