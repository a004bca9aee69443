namespace MediatorDiT.Models;

/// <summary>
/// Which attention module the blocks use, as a config names it (JSON "attention": "Full" or "Mediator").
/// Everything else about a kind (its module, cost, validation, checkpoint keys) is its
/// <see cref="AttentionSpec"/>, found with <see cref="AttentionKinds.For(AttentionKind)"/>.
/// </summary>
public enum AttentionKind
{
    /// <summary>Multi-head softmax self-attention (keys attn.qkv, attn.proj).</summary>
    Full,
    /// <summary>Attention through n mediator tokens pooled from the queries (the paper's module).</summary>
    Mediator,
}
