namespace MediatorDiT.Sampling;

/// <summary>What a schedule learns about a run before it starts: ladder size, batch layout, step count.</summary>
/// <param name="LadderSize">Models in the ladder.</param>
/// <param name="Layout">Samples and state rows.</param>
/// <param name="StepCount">Steps that evaluate the network (the decision points lie between them).</param>
public sealed record ScheduleContext(int LadderSize, BatchLayout Layout, int StepCount);
