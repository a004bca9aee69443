namespace MediatorDiT.Sampling;

/// <summary>
/// A sampler-side policy that picks which model of a <see cref="ModelLadder"/> serves each sample at each
/// step. The schedule object holds only settings; <see cref="Start"/> returns the state of one run.
/// </summary>
public interface IModelSchedule
{
    /// <summary>
    /// Checks the schedule against the run before any network call (throwing a
    /// <see cref="MediatorDiTException"/> naming the mismatch) and returns the run's decision state.
    /// </summary>
    IModelScheduleRun Start(ScheduleContext context);
}
