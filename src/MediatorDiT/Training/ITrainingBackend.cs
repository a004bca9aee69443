using MediatorDiT.Tensors;

namespace MediatorDiT.Training;

/// <summary>
/// One optimisation step's inputs, all drawn on the host by the trainer (so data order, label dropout and the
/// transport's (t, x0) do not depend on the backend): the shared-ladder member, the labels after dropout, and
/// per micro-batch the path states x_t (B, C, H, W) with their times t (B), noise x0 and data x1.
/// </summary>
public sealed record TrainingBatch(int Member, int[] Labels, Tensor Xt, float[] T, Tensor X0, Tensor X1, int GradAccum,
    double GradClip, double LearningRate, double EmaDecay);

/// <summary>What one step measured: mean loss per sample and the gradient norm before clipping.</summary>
public readonly record struct TrainingStepResult(double Loss, double GradNorm);

/// <summary>
/// Where a run's network, gradients, AdamW moments and EMA live and its steps are computed: the seam a second
/// device plugs in at. The trainer keeps the run's host objects (<see cref="TrainableNetwork"/> and its EMA,
/// <see cref="AdamW"/>), which checkpoints read and write; a backend that keeps its own copies loads them in
/// <see cref="Attach"/> and writes them back in <see cref="SyncToHost"/>. The CPU backend computes on those host
/// objects directly.
/// </summary>
public interface ITrainingBackend : IDisposable
{
    /// <summary>The device, in words, for logs.</summary>
    string Name { get; }

    /// <summary>Binds the run's state (after initialisation or resume); called once before the first step.</summary>
    void Attach(TrainableNetwork network, TrainableNetwork ema, AdamW optimizer);

    /// <summary>
    /// Forward, the transport's loss, backward over the micro-batches, clipping, AdamW at the batch's learning
    /// rate and the EMA update.
    /// </summary>
    TrainingStepResult Step(TrainingBatch batch);

    /// <summary>Makes the host objects current (parameters, moments, EMA) before a checkpoint, sample or export.</summary>
    void SyncToHost();
}
