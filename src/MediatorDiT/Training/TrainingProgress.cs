namespace MediatorDiT.Training;

/// <summary>What the trainer reports after each logged step; the CLI renders it.</summary>
public sealed record TrainingProgress(long Step, long TotalSteps, double Loss, double GradNorm, double LearningRate,
    double ImagesPerSecond, TimeSpan Elapsed, TimeSpan Remaining, string? Message = null);
