using System.Globalization;

namespace MediatorDiT.Data;

/// <summary>
/// Turns a grey uint8 image into a training sample (1, S, S): scaled to [-1, 1] ((v / 255 - 0.5) / 0.5,
/// see <see cref="ImageConversion.ToFloat"/>),
/// then padded or resized to S = <see cref="TargetSize"/>, which the model's patch size must divide.
/// The default pads 28x28 to 32x32 with 2 black pixels on each side (a 16x16 token grid at patch 2).
/// Padding an odd amount puts the extra pixel at the bottom and the right. Random horizontal flips
/// are the loader's option (<see cref="DataLoaderOptions.HorizontalFlip"/>) so they follow its seed.
/// </summary>
public sealed record PixelPreprocessing
{
    /// <summary>Pad to 32x32.</summary>
    public static PixelPreprocessing Default { get; } = new();

    /// <summary>Side S of the square sample.</summary>
    public int TargetSize { get; init; } = 32;

    /// <summary>Whether images are padded or resized to <see cref="TargetSize"/>.</summary>
    public SizeFit Fit { get; init; } = SizeFit.Pad;

    /// <summary>Checks that the sample size suits a model with patch size <paramref name="patchSize"/>; throws when it does not.</summary>
    public void CheckPatchSize(int patchSize)
    {
        if (patchSize <= 0 || TargetSize % patchSize != 0)
            throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture,
                $"The image size {TargetSize} is not a multiple of the model's patch size {patchSize}; choose an image size the patch size divides (e.g. {RoundUp(TargetSize, Math.Max(patchSize, 1))})."));
    }

    internal void CheckSource(int height, int width)
    {
        if (TargetSize <= 0)
            throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture, $"The image size must be positive, but is {TargetSize}."));
        if (Fit == SizeFit.Pad && (TargetSize < height || TargetSize < width))
            throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture,
                $"The image size {TargetSize} is smaller than the dataset's {height}x{width} images, which padding cannot do; use the resize fit or a size of at least {Math.Max(height, width)}."));
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
