using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

public class PngFiltersTests
{
    /// <summary>The filters straight from the format description, one byte at a time.</summary>
    private static byte NaiveFilter(byte filter, byte[] row, byte[] prior, int bpp, int i)
    {
        int a = i >= bpp ? row[i - bpp] : 0, b = prior[i], c = i >= bpp ? prior[i - bpp] : 0;
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        int paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        int predicted = filter switch { 0 => 0, 1 => a, 2 => b, 3 => (a + b) / 2, _ => paeth };
        return (byte)(row[i] - predicted);
    }

    [Fact]
    public void EveryFilterMatchesTheDefinitionAndReverses()
    {
        var random = new Random(11);
        foreach (int length in new[] { 0, 1, 3, 31, 32, 33, 64, 100, 257 })
            foreach (int bpp in new[] { 1, 2, 3, 4, 6, 8 })
                for (byte filter = 0; filter < 5; filter++)
                {
                    var row = new byte[length];
                    var prior = new byte[length];
                    random.NextBytes(row);
                    random.NextBytes(prior);
                    if (length > 10) row[5] = 128; // the byte whose magnitude is 128 either way
                    var filtered = new byte[length];

                    PngFilters.Apply(filter, row, prior, bpp, filtered);

                    for (int i = 0; i < length; i++)
                        Assert.True(NaiveFilter(filter, row, prior, bpp, i) == filtered[i], $"filter {filter}, bpp {bpp}, length {length}, byte {i}");
                    Assert.True(PngFilters.TryReverse(filter, filtered, prior, bpp));
                    Assert.Equal(row, filtered);
                }
    }

    [Fact]
    public void SumOfAbsoluteValuesReadsBytesAsSigned()
    {
        var random = new Random(5);
        foreach (int length in new[] { 0, 7, 64, 1000, 20_000 })
        {
            var bytes = new byte[length];
            random.NextBytes(bytes);
            long expected = bytes.Sum(b => (long)Math.Abs((int)(sbyte)b));
            Assert.Equal(expected, PngFilters.SumOfAbsoluteValues(bytes));
        }
        Assert.Equal(128 + 1 + 1 + 127, PngFilters.SumOfAbsoluteValues([128, 255, 1, 127]));
        Assert.Equal(128L * 40_000, PngFilters.SumOfAbsoluteValues(Enumerable.Repeat((byte)128, 40_000).ToArray()));
    }

    [Fact]
    public void UnknownFilterTypeIsNotReversed() =>
        Assert.False(PngFilters.TryReverse(5, new byte[4], new byte[4], 1));
}
