using MediatorDiT.Tensors;

namespace MediatorDiT.Training;

/// <summary>
/// One optimisation step's inputs, all drawn on the host by the trainer (so data order, label dropout and the
/// transport's (t, x0) do not depend on the backend or the number of ranks): the shared-ladder member, the labels
/// after dropout, the path states x_t (B, C, H, W) with their times t (B), noise x0 and data x1. The samples are
/// <paramref name="Shards"/> equal parts of the global batch, parts <see cref="FirstShard"/> on of
/// <see cref="TotalShards"/>: each part's gradient is computed on its own and the parts' gradients are summed in
/// part order over all ranks.
/// </summary>
public sealed record TrainingBatch(int Member, int[] Labels, Tensor Xt, float[] T, Tensor X0, Tensor X1, int Shards,
    double GradClip, double LearningRate, double EmaDecay)
{
    /// <summary>The global index of this batch's first part.</summary>
    public int FirstShard { get; init; }

    /// <summary>Parts of the global batch over all ranks; this batch holds all of them when equal to <see cref="Shards"/>.</summary>
    public int TotalShards { get; init; } = Shards;

    /// <summary>Samples of the global batch (the loss is their mean).</summary>
    public int GlobalSize => Labels.Length / Shards * TotalShards;

    /// <summary>Parts <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/> - 1 of this batch, as a batch of its own.</summary>
    public TrainingBatch Part(int first, int count)
    {
        if (first < 0 || count < 1 || first + count > Shards)
            throw new ArgumentOutOfRangeException(nameof(count), $"parts {first}..{first + count - 1} are outside the batch's {Shards}.");
        if (first == 0 && count == Shards) return this;
        int per = Labels.Length / Shards, start = first * per, size = count * per;
        Tensor Slice(Tensor full)
        {
            int sample = full.Length / Labels.Length;
            return new Tensor(full.Span.Slice(start * sample, size * sample).ToArray(), [size, .. full.Shape[1..]]);
        }
        return this with
        {
            Labels = Labels.AsSpan(start, size).ToArray(), Xt = Slice(Xt), T = T.AsSpan(start, size).ToArray(), X0 = Slice(X0), X1 = Slice(X1),
            Shards = count, FirstShard = FirstShard + first, TotalShards = TotalShards,
        };
    }
}

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
    /// Forward, the transport's loss and backward per part of the batch, the parts' gradients summed in part order
    /// over all ranks, clipping, AdamW at the batch's learning rate and the EMA update. The result is the global
    /// batch's (the same on every rank).
    /// </summary>
    TrainingStepResult Step(TrainingBatch batch);

    /// <summary>Makes the host objects current (parameters, moments, EMA) before a checkpoint, sample or export.</summary>
    void SyncToHost();
}
