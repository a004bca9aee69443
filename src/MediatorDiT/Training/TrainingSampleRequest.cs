namespace MediatorDiT.Training;

/// <summary>
/// What <see cref="Trainer.Options.OnSample"/> receives every <c>sample_every</c> steps: the EMA network (synced to the
/// host), the step, where the run keeps that step's samples (<c>samples/step-NNNNNNN.png</c>) and the config's
/// <c>sample_steps</c>.
/// </summary>
/// <param name="Ema">The EMA network; a shared ladder's largest member is <c>Ema.Members[^1]</c>.</param>
/// <param name="Step">The optimisation step just taken.</param>
/// <param name="Path">The file the run reserves for this step's samples.</param>
/// <param name="SamplingSteps">The config's <c>sample_steps</c>: how many sampler steps to take.</param>
public sealed record TrainingSampleRequest(TrainableNetwork Ema, long Step, string Path, int SamplingSteps);
