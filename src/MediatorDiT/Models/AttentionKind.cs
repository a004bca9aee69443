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

/// <summary>How a config's attention is named and counted wherever it is shown or recorded, in one place.</summary>
public static class AttentionKinds
{
    /// <summary>"full attention" or "16 mediators".</summary>
    public static string Describe(ModelConfig config) =>
        config.Attention == AttentionKind.Full ? "full attention" : $"{config.MediatorNum} mediators";

    /// <summary>"full" or "m16", as the ladder's files and the demo name its models.</summary>
    public static string ShortName(ModelConfig config) =>
        config.Attention == AttentionKind.Full ? "full" : $"m{config.MediatorNum}";

    /// <summary>0 for full attention, else the mediator count (as run records store it).</summary>
    public static int MediatorCount(ModelConfig config) => config.Attention == AttentionKind.Full ? 0 : config.MediatorNum;
}
