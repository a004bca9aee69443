using System.Globalization;

namespace MediatorDiT.Data;

/// <summary>
/// How a built-in dataset is split: within each class (images kept in source order), the last
/// <see cref="TestCount"/> images form the test set and the rest the training set. Either a fixed
/// count per class, or the floor of a fraction 1/<see cref="Denominator"/> of the class.
/// </summary>
public sealed record TestSplitRule
{
    /// <summary>Images per class held out, when the rule is a fixed count; 0 otherwise.</summary>
    public int FixedCount { get; }

    /// <summary>Held out per class = floor(classCount / Denominator), when the rule is a fraction; 0 otherwise.</summary>
    public int Denominator { get; }

    private TestSplitRule(int fixedCount, int denominator)
    {
        FixedCount = fixedCount;
        Denominator = denominator;
    }

    /// <summary>The last <paramref name="count"/> images of each class are the test set.</summary>
    public static TestSplitRule LastPerClass(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return new TestSplitRule(count, 0);
    }

    /// <summary>The last floor(n / <paramref name="denominator"/>) images of a class of n images are the test set.</summary>
    public static TestSplitRule LastFractionPerClass(int denominator)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(denominator, 1);
        return new TestSplitRule(0, denominator);
    }

    /// <summary>Test images of a class holding <paramref name="classCount"/> images.</summary>
    public int TestCount(int classCount)
    {
        int count = Denominator > 0 ? classCount / Denominator : FixedCount;
        if (count > classCount)
            throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture,
                $"The test split holds out the last {count} images of each class, but a class has only {classCount} images."));
        return count;
    }

    /// <summary>The rule in words, e.g. "test = last 1000 images of each class, train = the rest".</summary>
    public override string ToString() => Denominator > 0
        ? string.Create(CultureInfo.InvariantCulture, $"test = last floor(n/{Denominator}) images of each class, train = the rest")
        : string.Create(CultureInfo.InvariantCulture, $"test = last {FixedCount} images of each class, train = the rest");
}
