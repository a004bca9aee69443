using System.Globalization;

namespace MediatorDiT.Evaluation;

/// <summary>
/// One point of the threshold grid: the switch ratios of an adaptive schedule (ratio1 for leaving the
/// first model, ratio2 for the second, ...), and its position <see cref="Index"/> in the grid.
/// </summary>
public sealed class ThresholdPair
{
    private readonly double[] _ratios;

    /// <summary>A grid point with the given switch ratios (copied).</summary>
    /// <param name="index">Its position in the grid.</param>
    /// <param name="ratios">One ratio per switch, first switch first.</param>
    /// <exception cref="MediatorDiTException"><paramref name="ratios"/> is empty.</exception>
    public ThresholdPair(int index, params double[] ratios)
    {
        ArgumentNullException.ThrowIfNull(ratios);
        if (ratios.Length == 0) throw new MediatorDiTException("a threshold pair needs at least one switch ratio.");
        Index = index;
        _ratios = (double[])ratios.Clone();
    }

    /// <summary>The position in the grid.</summary>
    public int Index { get; }

    /// <summary>The switch ratios, first switch first.</summary>
    public IReadOnlyList<double> Ratios => _ratios;

    /// <summary>The ratio for leaving the first model.</summary>
    public double Ratio1 => _ratios[0];

    /// <summary>The second ratio, or null for a two-model ladder.</summary>
    public double? Ratio2 => _ratios.Length > 1 ? _ratios[1] : null;

    /// <summary>The ratios as `mdit sample --ratios` takes them, e.g. "0.9,0.6".</summary>
    public override string ToString() => string.Join(",", _ratios.Select(r => r.ToString("R", CultureInfo.InvariantCulture)));
}
