namespace MediatorDiT.Pipelines;

/// <summary>Progress of <see cref="LadderDemo"/>: which run ("dynamic" or "largest") and its steps.</summary>
public sealed record LadderDemoProgress(string Run, int StepsDone, int StepCount);
