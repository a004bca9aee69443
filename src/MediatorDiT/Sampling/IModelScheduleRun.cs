namespace MediatorDiT.Sampling;

/// <summary>The decisions of one sampling run of an <see cref="IModelSchedule"/>.</summary>
public interface IModelScheduleRun
{
    /// <summary>The ladder index that serves <paramref name="sample"/> in the coming step.</summary>
    int ModelOf(int sample);

    /// <summary>
    /// Called after every step but the last with the states before and after it; a decision taken here
    /// takes effect from the next step on.
    /// </summary>
    void Observe(StepObservation observation);
}
