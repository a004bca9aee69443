namespace MediatorDiT.Data;

/// <summary>Batching settings of a <see cref="DataLoader"/>; together with the dataset they fix every batch of a run.</summary>
public sealed record DataLoaderOptions
{
    /// <summary>Samples per batch, at least 1.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Seeds the per-epoch shuffles and flips; save it with a checkpoint to resume the same batches.</summary>
    public ulong Seed { get; init; }

    /// <summary>False keeps dataset order every epoch (evaluation, debugging).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Drops each epoch's last, smaller batch (DiT trains with drop_last=True).</summary>
    public bool DropLast { get; init; } = true;

    /// <summary>Mirrors each sample left-right with probability 1/2 (DiT's RandomHorizontalFlip).</summary>
    public bool HorizontalFlip { get; init; }
}
