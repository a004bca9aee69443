using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Models.Vae;

/// <summary>
/// The buffers one image's pass through the VAE reuses: two activations that the blocks ping-pong
/// between, two block-internal temporaries, the attention's q/k/v/scores, and the im2col bands. Each
/// grows to the largest size seen and is kept, so a batch (or many batches) allocates once.
/// Not thread-safe: one pass at a time.
/// </summary>
internal sealed class VaeWorkspace
{
    /// <summary>The current activation (C, H, W) and the next one; blocks read Current and write Next.</summary>
    internal Tensor Current = new(0), Next = new(0);

    /// <summary>Temporaries inside a block (normalised input, first conv's output, shortcut, upsampled map).</summary>
    internal Tensor T1 = new(0), T2 = new(0);

    /// <summary>Attention: q, k, v and per-position output (HW, C), scores (HW, HW).</summary>
    internal Tensor Q = new(0), K = new(0), V = new(0), AttentionOut = new(0), Scores = new(0);

    internal Conv2dWorkspace Conv { get; } = new();

    /// <summary>Makes the block output (Next) the input of the following block.</summary>
    internal void Swap() => (Current, Next) = (Next, Current);

    private IEnumerable<Tensor> All => [Current, Next, T1, T2, Q, K, V, AttentionOut, Scores];

    /// <summary>Floats currently held by all buffers (for memory accounting).</summary>
    public long HeldFloats => All.Sum(t => (long)t.Data.Length) + Conv.HeldFloats;

    /// <summary>Drops every buffer; the next pass allocates again.</summary>
    public void Release()
    {
        Current = new(0);
        Next = new(0);
        T1 = new(0);
        T2 = new(0);
        Q = new(0);
        K = new(0);
        V = new(0);
        AttentionOut = new(0);
        Scores = new(0);
        Conv.Release();
    }
}
