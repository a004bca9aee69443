using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Pipelines;

/// <summary>One sampling run of the demo: samples (B, C, H, W), which model served each step, wall time, classifier agreement.</summary>
public sealed record LadderDemoRun(Tensor Samples, ModelUsageLog Usage, double WallSeconds, double ClassAgreement)
{
    /// <summary>Mean FLOPs (multiply-accumulates) per image of the run.</summary>
    public double FlopsPerImage => Usage.MeanFlopsPerImage;

    /// <summary>The first step each ladder model served (sample 0; the demo decides on the batch mean), or -1.</summary>
    public int[] FirstStepOfModel(int models) => Enumerable.Range(0, models).Select(m => Usage.FirstStepOf(m, 0)).ToArray();
}

/// <summary>
/// What <see cref="LadderDemo"/> made: the labels (class c for rows c, <see cref="LadderDemoOptions.PerClass"/>
/// each), the ladder models' FLOPs per image and evaluation, the dynamic schedule's run and the largest
/// model's run on the same noise and labels, and the switch ratios and reference steps used (and where they came from).
/// </summary>
public sealed record LadderDemoResult(
    LadderDemoOptions Options, IReadOnlyList<double> SwitchRatios, int First, string ScheduleSource, int[] Labels, IReadOnlyList<double> FlopsPerModel,
    LadderDemoRun Dynamic, LadderDemoRun Largest)
{
    /// <summary>Fraction of the largest model's FLOPs per image that the dynamic schedule saves.</summary>
    public double FlopsSaving => 1 - Dynamic.FlopsPerImage / Largest.FlopsPerImage;

    /// <summary>Fraction of the largest model's wall time that the dynamic schedule saves (this machine, this run).</summary>
    public double TimeSaving => 1 - Dynamic.WallSeconds / Largest.WallSeconds;

    /// <summary>First step served by each ladder model under the dynamic schedule (-1: never).</summary>
    public int[] SwitchSteps => Dynamic.FirstStepOfModel(FlopsPerModel.Count);
}
