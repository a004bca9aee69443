using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// The step-wise dynamic mediator rule of Pu et al. (official sample_ddp_three.py with its SDE loop):
/// let d_k be the distance between the states after steps k and k - 1 (0-based steps). The reference is
/// the mean of d_1 .. d_F (F = <see cref="ReferenceSteps"/>; d_0, the change from the initial noise, is not
/// used). From step F + 1 on, after each step k the sampler moves to the next model while
/// d_k &lt; ratio_i * reference (ratio_i belongs to the current model i), so several moves in one step are
/// possible; it never moves back. A move decided after step k serves from step k + 1 on, the SDE's last
/// step included. A ratio of 0 never leaves its model (a distance is never negative), and equal
/// consecutive ratios make both moves at once: the authors' threshold grid uses both (docs/THRESHOLDS.md).
/// </summary>
public sealed class AdaptiveModelSchedule : IModelSchedule
{
    private readonly double[] _ratios;

    /// <summary>The authors' reference steps (first_several_num): 3.</summary>
    public const int DefaultReferenceSteps = 3;

    /// <summary>
    /// The one default rule for switch ratios: the authors' 0.9, 0.6 for a ladder of 3 models; otherwise
    /// 0.9, 0.6, 0.3, then 0 (never leave) for each further move.
    /// </summary>
    public static IReadOnlyList<double> DefaultRatios(int ladderSize)
    {
        if (ladderSize < 1) throw new MediatorDiTException($"a ladder has at least one model, got {ladderSize}.");
        return Enumerable.Range(0, ladderSize - 1).Select(i => Math.Max(0, Math.Round(0.9 - 0.3 * i, 10))).ToArray();
    }

    /// <summary>ratio_i for leaving model i, one per switch; each in [0, 1] and not increasing.</summary>
    public IReadOnlyList<double> SwitchRatios => _ratios;

    /// <summary>F: the steps whose distances form the reference.</summary>
    public int ReferenceSteps { get; }

    /// <summary>How the change between consecutive states is measured.</summary>
    public StateDistance Distance { get; }

    /// <summary>Whether one decision serves the whole batch or each sample decides alone.</summary>
    public DecisionScope Scope { get; }

    /// <summary>The rule with the given ratios (one per switch, so a ladder of n models takes n - 1).</summary>
    /// <param name="switchRatios">ratio_i for leaving model i; each in [0, 1], not increasing (e.g. <see cref="DefaultRatios"/>).</param>
    /// <param name="referenceSteps">F, at least 1 (the authors use <see cref="DefaultReferenceSteps"/>).</param>
    /// <param name="distance">The state distance (the authors' "mae" by default).</param>
    /// <param name="scope">One decision per batch (the official behaviour) or per sample.</param>
    /// <exception cref="MediatorDiTException">A ratio is outside [0, 1] or increases, F is below 1, or an enum value is undefined.</exception>
    public AdaptiveModelSchedule(IReadOnlyList<double> switchRatios, int referenceSteps,
        StateDistance distance = StateDistance.MeanAbsolute, DecisionScope scope = DecisionScope.BatchMean)
    {
        ArgumentNullException.ThrowIfNull(switchRatios);
        for (int i = 0; i < switchRatios.Count; i++)
        {
            double r = switchRatios[i];
            if (!(r >= 0 && r <= 1))
                throw new MediatorDiTException($"switch ratio {r} (switch {i + 1}) is outside [0, 1]; it is the fraction of the reference change below which the next model takes over.");
            if (i > 0 && r > switchRatios[i - 1])
                throw new MediatorDiTException(
                    $"switch ratios must not increase from one switch to the next, got {switchRatios[i - 1]} then {r}.");
        }
        if (referenceSteps < 1)
            throw new MediatorDiTException($"the reference must span at least one step (first_several_num >= 1), got {referenceSteps}.");
        if (!Enum.IsDefined(distance))
            throw new MediatorDiTException($"state distance {(int)distance} is not one of MeanAbsolute, MeanSquared.");
        if (!Enum.IsDefined(scope))
            throw new MediatorDiTException($"decision scope {(int)scope} is not one of BatchMean, PerSample.");
        _ratios = switchRatios.ToArray();
        ReferenceSteps = referenceSteps;
        Distance = distance;
        Scope = scope;
    }

    /// <inheritdoc/>
    /// <remarks>Throws a <see cref="MediatorDiTException"/> when the ladder does not have one more model than there are ratios.</remarks>
    public IModelScheduleRun Start(ScheduleContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_ratios.Length != context.LadderSize - 1)
            throw new MediatorDiTException(
                $"the schedule has {_ratios.Length} switch ratios but a ladder of {context.LadderSize} models needs {context.LadderSize - 1}.");
        return new Run(this, context.Layout);
    }

    /// <summary>
    /// The distance between two states over the rows of each decision unit: one unit (all rows) for
    /// <see cref="DecisionScope.BatchMean"/>, else one per sample (its rows in <paramref name="layout"/>).
    /// </summary>
    public double[] Distances(Tensor previous, Tensor current, BatchLayout layout)
    {
        ArgumentNullException.ThrowIfNull(previous);
        ArgumentNullException.ThrowIfNull(current);
        if (!previous.SameShape(current) || current.Dim(0) != layout.Rows)
            throw new MediatorDiTException($"states [{previous.ShapeString}] and [{current.ShapeString}] do not match a layout of {layout.Rows} rows.");
        int per = current.Length / layout.Rows;
        var rowSums = new double[layout.Rows];
        var p = previous.Span;
        var c = current.Span;
        for (int r = 0; r < layout.Rows; r++)
        {
            double sum = 0;
            for (int i = r * per, end = i + per; i < end; i++)
            {
                double d = c[i] - p[i];
                sum += Distance == StateDistance.MeanAbsolute ? Math.Abs(d) : d * d;
            }
            rowSums[r] = sum;
        }
        if (Scope == DecisionScope.BatchMean) return [rowSums.Sum() / ((double)per * layout.Rows)];
        var distances = new double[layout.Samples];
        for (int s = 0; s < layout.Samples; s++)
        {
            double sum = 0;
            for (int copy = 0; copy < layout.RowsPerSample; copy++) sum += rowSums[layout.Row(s, copy)];
            distances[s] = sum / ((double)per * layout.RowsPerSample);
        }
        return distances;
    }

    private sealed class Run(AdaptiveModelSchedule owner, BatchLayout layout) : IModelScheduleRun
    {
        private readonly int[] _model = new int[owner.Scope == DecisionScope.BatchMean ? 1 : layout.Samples];
        private readonly double[] _reference = new double[owner.Scope == DecisionScope.BatchMean ? 1 : layout.Samples];

        public int ModelOf(int sample) => _model[owner.Scope == DecisionScope.BatchMean ? 0 : sample];

        public void Observe(StepObservation observation)
        {
            int step = observation.Step, f = owner.ReferenceSteps;
            if (step < 1) return;
            var distances = owner.Distances(observation.Previous, observation.Current, observation.Layout);
            for (int u = 0; u < distances.Length; u++)
            {
                if (step <= f)
                {
                    // Accumulated as the official code does: reference += d / F.
                    _reference[u] += distances[u] / f;
                    continue;
                }
                while (_model[u] < owner._ratios.Length && distances[u] < owner._ratios[_model[u]] * _reference[u])
                    _model[u]++;
            }
        }
    }
}
