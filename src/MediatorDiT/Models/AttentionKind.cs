namespace MediatorDiT.Models;

/// <summary>Which attention module the blocks use.</summary>
public enum AttentionKind
{
    /// <summary>Multi-head softmax self-attention (keys attn.qkv, attn.proj).</summary>
    Full,
    /// <summary>Attention through n mediator tokens pooled from the queries (the paper's module).</summary>
    Mediator,
}

/// <summary>SiT (continuous t in [0,1], returns the first C channels) or DiT (integer t, returns all 2C).</summary>
public enum ModelFamily
{
    SiT,
    DiT,
}
