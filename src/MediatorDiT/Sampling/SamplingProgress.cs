namespace MediatorDiT.Sampling;

/// <summary>Reported after each step: steps done of all, evaluations and mean FLOPs per image so far.</summary>
public sealed record SamplingProgress(int StepsDone, int StepCount, int Evaluations, double MeanFlopsPerImage);
