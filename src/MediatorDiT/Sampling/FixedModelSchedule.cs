namespace MediatorDiT.Sampling;

/// <summary>
/// A schedule fixed in advance: model i + 1 of the ladder takes over at a given step, for every sample.
/// Build it from fractions of the run (<see cref="FixedModelSchedule(double[])"/>), from step indices
/// (<see cref="AtSteps"/>) or as one model throughout (<see cref="Only"/>).
/// </summary>
public sealed class FixedModelSchedule : IModelSchedule
{
    private readonly double[]? _fractions;
    private readonly int[]? _steps;
    private readonly int _only = -1;

    /// <summary>
    /// Model i + 1 serves from the first step k with k &gt;= switchFractions[i] * StepCount. One fraction per
    /// switch (ladder size - 1), each in [0, 1] and not decreasing.
    /// </summary>
    public FixedModelSchedule(params double[] switchFractions)
    {
        ArgumentNullException.ThrowIfNull(switchFractions);
        for (int i = 0; i < switchFractions.Length; i++)
        {
            double f = switchFractions[i];
            if (!(f >= 0 && f <= 1))
                throw new MediatorDiTException($"switch fraction {f} (switch {i + 1}) is outside [0, 1]; give the fraction of the steps after which the next model takes over.");
            if (i > 0 && f < switchFractions[i - 1])
                throw new MediatorDiTException($"switch fractions must not decrease, got {switchFractions[i - 1]} then {f}.");
        }
        _fractions = (double[])switchFractions.Clone();
    }

    private FixedModelSchedule(int[]? steps, int only)
    {
        _steps = steps;
        _only = only;
    }

    /// <summary>Model i + 1 serves from step switchSteps[i] (0-based) on; the steps must not decrease.</summary>
    public static FixedModelSchedule AtSteps(params int[] switchSteps)
    {
        ArgumentNullException.ThrowIfNull(switchSteps);
        for (int i = 0; i < switchSteps.Length; i++)
        {
            if (switchSteps[i] < 0)
                throw new MediatorDiTException($"switch step {switchSteps[i]} (switch {i + 1}) is negative; steps count from 0.");
            if (i > 0 && switchSteps[i] < switchSteps[i - 1])
                throw new MediatorDiTException($"switch steps must not decrease, got {switchSteps[i - 1]} then {switchSteps[i]}.");
        }
        return new FixedModelSchedule((int[])switchSteps.Clone(), -1);
    }

    /// <summary>Ladder model <paramref name="modelIndex"/> (0-based) serves every step.</summary>
    public static FixedModelSchedule Only(int modelIndex)
    {
        if (modelIndex < 0) throw new MediatorDiTException($"model index {modelIndex} is negative; ladder indices count from 0.");
        return new FixedModelSchedule(null, modelIndex);
    }

    /// <inheritdoc/>
    /// <remarks>Throws a <see cref="MediatorDiTException"/> when the schedule's switches or model index do not fit the ladder.</remarks>
    public IModelScheduleRun Start(ScheduleContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_only >= 0)
        {
            if (_only >= context.LadderSize)
                throw new MediatorDiTException($"the schedule uses model index {_only} but the ladder has {context.LadderSize} models.");
            return new Run([], _only);
        }
        int switches = (_fractions?.Length ?? _steps!.Length);
        if (switches != context.LadderSize - 1)
            throw new MediatorDiTException(
                $"the schedule has {switches} switch points but a ladder of {context.LadderSize} models needs {context.LadderSize - 1}.");
        int[] starts = _steps ?? _fractions!.Select(f => (int)Math.Ceiling(f * context.StepCount - 1e-9)).ToArray();
        return new Run(starts, 0);
    }

    private sealed class Run(int[] starts, int firstModel) : IModelScheduleRun
    {
        private int _step;

        public int ModelOf(int sample)
        {
            int model = firstModel;
            foreach (int start in starts)
                if (_step >= start) model++;
            return model;
        }

        public void Observe(StepObservation observation) => _step = observation.Step + 1;
    }
}
