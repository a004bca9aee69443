using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// Reported after each step: steps done of all, evaluations and mean FLOPs per image so far, and, for watchers,
/// the state after the step and the ladder model that served each sample in it.
/// </summary>
/// <param name="StepsDone">Steps finished, 1..<paramref name="StepCount"/>.</param>
/// <param name="StepCount">Network-evaluating steps of the run.</param>
/// <param name="Evaluations">Network evaluations so far (a Heun or Dormand-Prince step makes several).</param>
/// <param name="MeanFlopsPerImage">Mean multiply-accumulates per image so far.</param>
public sealed record SamplingProgress(int StepsDone, int StepCount, int Evaluations, double MeanFlopsPerImage)
{
    /// <summary>
    /// The sampler's state after the step (rows, C, H, W); the first B rows are the samples (under guidance the
    /// unconditional copies follow). A live buffer: read it during the report, do not keep it.
    /// </summary>
    public Tensor? State { get; init; }

    /// <summary>The ladder model (index, cheapest first) that served each sample (B) in this step.</summary>
    public IReadOnlyList<int>? ModelPerSample { get; init; }
}
