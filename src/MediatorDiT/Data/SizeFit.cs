namespace MediatorDiT.Data;

/// <summary>How a built-in dataset's 28x28 images are brought to the training size.</summary>
public enum SizeFit
{
    /// <summary>Centred on a black (-1) canvas; the target must be at least the image size.</summary>
    Pad,

    /// <summary>Bilinear resize, PyTorch's F.interpolate(mode='bilinear', align_corners=False, antialias=False).</summary>
    Resize,
}
