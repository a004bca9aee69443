namespace MediatorDiT.Data;

/// <summary>The shape (C, H, W) of one sample of a dataset; a batch is (B, C, H, W).</summary>
public readonly record struct SampleShape(int Channels, int Height, int Width)
{
    /// <summary>C * H * W, the floats one sample fills.</summary>
    public int Length => Channels * Height * Width;

    /// <summary>"(C, H, W)".</summary>
    public override string ToString() => $"({Channels}, {Height}, {Width})";
}
