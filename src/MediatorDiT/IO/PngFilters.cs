using System.Numerics;

namespace MediatorDiT.IO;

/// <summary>
/// The five PNG row filters (method 0). Each byte is predicted from the byte one pixel to the left
/// (a), the byte above (b) and the byte above-left (c), with bpp = bytes per complete pixel, at
/// least 1; bytes left of the row and the row above the first are zero.
/// </summary>
internal static class PngFilters
{
    public const byte None = 0, Sub = 1, Up = 2, Average = 3, Paeth = 4;

    /// <summary>Writes the filtered row to <paramref name="filtered"/> (same length as <paramref name="row"/>).</summary>
    public static void Apply(byte filter, ReadOnlySpan<byte> row, ReadOnlySpan<byte> prior, int bpp, Span<byte> filtered)
    {
        int n = row.Length;
        int head = Math.Min(bpp, n);
        // The first pixel has no left neighbour (a = c = 0); the rest is done SIMD-wide, then scalar.
        switch (filter)
        {
            case None:
                row.CopyTo(filtered);
                return;
            case Sub:
                row[..head].CopyTo(filtered);
                break;
            case Up:
                head = 0;
                break;
            case Average:
                for (int i = 0; i < head; i++) filtered[i] = (byte)(row[i] - (prior[i] >> 1));
                break;
            case Paeth:
                for (int i = 0; i < head; i++) filtered[i] = (byte)(row[i] - prior[i]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(filter), filter, "PNG filter types are 0 to 4.");
        }
        int start = head;
        int done = Vector.IsHardwareAccelerated ? ApplyVectorized(filter, row, prior, bpp, filtered, start) : start;
        for (int i = done; i < n; i++)
        {
            byte b = prior[i];
            byte a = i >= bpp ? row[i - bpp] : (byte)0;
            byte c = i >= bpp ? prior[i - bpp] : (byte)0;
            filtered[i] = filter switch
            {
                Sub => (byte)(row[i] - a),
                Up => (byte)(row[i] - b),
                Average => (byte)(row[i] - ((a + b) >> 1)),
                _ => (byte)(row[i] - Predict(a, b, c)),
            };
        }
    }

    /// <summary>
    /// Filters bytes from <paramref name="start"/> in whole vectors; returns where it stopped. When
    /// encoding, a, b and c all come from the unfiltered rows, so every byte is independent.
    /// </summary>
    private static int ApplyVectorized(byte filter, ReadOnlySpan<byte> row, ReadOnlySpan<byte> prior, int bpp, Span<byte> filtered, int start)
    {
        int width = Vector<byte>.Count;
        int i = start;
        if (filter == Up)
        {
            for (; i + width <= row.Length; i += width)
                (new Vector<byte>(row[i..]) - new Vector<byte>(prior[i..])).CopyTo(filtered[i..]);
            return i;
        }
        if (start < bpp) return start; // the row is shorter than one pixel and already done
        for (; i + width <= row.Length; i += width)
        {
            var x = new Vector<byte>(row[i..]);
            var a = new Vector<byte>(row[(i - bpp)..]);
            Vector<byte> predicted;
            if (filter == Sub) predicted = a;
            else
            {
                var b = new Vector<byte>(prior[i..]);
                if (filter == Average) predicted = (a & b) + ((a ^ b) >> 1); // floor((a + b) / 2) without overflow
                else predicted = PaethVector(a, b, new Vector<byte>(prior[(i - bpp)..]));
            }
            (x - predicted).CopyTo(filtered[i..]);
        }
        return i;
    }

    /// <summary>The Paeth predictor lane-wise, in 16 bits: |p - a| = |b - c|, |p - b| = |a - c|, |p - c| = |a + b - 2c|.</summary>
    private static Vector<byte> PaethVector(Vector<byte> a, Vector<byte> b, Vector<byte> c)
    {
        Vector.Widen(a, out Vector<ushort> aLow, out Vector<ushort> aHigh);
        Vector.Widen(b, out Vector<ushort> bLow, out Vector<ushort> bHigh);
        Vector.Widen(c, out Vector<ushort> cLow, out Vector<ushort> cHigh);
        Vector<ushort> low = PaethHalf(aLow.As<ushort, short>(), bLow.As<ushort, short>(), cLow.As<ushort, short>());
        Vector<ushort> high = PaethHalf(aHigh.As<ushort, short>(), bHigh.As<ushort, short>(), cHigh.As<ushort, short>());
        return Vector.Narrow(low, high);
    }

    private static Vector<ushort> PaethHalf(Vector<short> a, Vector<short> b, Vector<short> c)
    {
        Vector<short> pa = Vector.Abs(b - c);
        Vector<short> pb = Vector.Abs(a - c);
        Vector<short> pc = Vector.Abs(a + b - c - c);
        Vector<short> useA = Vector.BitwiseAnd(Vector.LessThanOrEqual(pa, pb), Vector.LessThanOrEqual(pa, pc));
        Vector<short> useB = Vector.LessThanOrEqual(pb, pc);
        Vector<short> bOrC = Vector.ConditionalSelect(useB, b, c);
        return Vector.ConditionalSelect(useA, a, bOrC).As<short, ushort>();
    }

    /// <summary>Undoes a filter in place; false when <paramref name="filter"/> is not one of the five types.</summary>
    public static bool TryReverse(byte filter, Span<byte> row, ReadOnlySpan<byte> prior, int bpp)
    {
        int n = row.Length;
        switch (filter)
        {
            case None:
                return true;
            case Sub:
                for (int i = bpp; i < n; i++) row[i] += row[i - bpp];
                return true;
            case Up:
                for (int i = 0; i < n; i++) row[i] += prior[i];
                return true;
            case Average:
                for (int i = 0; i < bpp && i < n; i++) row[i] += (byte)(prior[i] >> 1);
                for (int i = bpp; i < n; i++) row[i] += (byte)((row[i - bpp] + prior[i]) >> 1);
                return true;
            case Paeth:
                for (int i = 0; i < bpp && i < n; i++) row[i] += prior[i];
                for (int i = bpp; i < n; i++) row[i] += Predict(row[i - bpp], prior[i], prior[i - bpp]);
                return true;
            default:
                return false;
        }
    }

    /// <summary>The Paeth predictor: whichever of a, b, c is closest to a + b - c (ties prefer a, then b).</summary>
    public static byte Predict(byte a, byte b, byte c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        if (pa <= pb && pa <= pc) return a;
        return pb <= pc ? b : c;
    }

    /// <summary>
    /// The usual heuristic for choosing a filter: the sum of the filtered bytes read as signed values,
    /// in absolute value; smaller sums tend to compress better.
    /// </summary>
    public static long SumOfAbsoluteValues(ReadOnlySpan<byte> filtered)
    {
        long sum = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // |x| of a signed byte read back as unsigned is 0..128 (Abs(-128) wraps to 128, as wanted);
            // 16-bit lanes take 255 such additions (2 per vector) before they could overflow.
            int width = Vector<byte>.Count;
            while (i + width <= filtered.Length)
            {
                Vector<ushort> lanes = Vector<ushort>.Zero;
                for (int k = 0; k < 255 && i + width <= filtered.Length; k++, i += width)
                {
                    Vector<byte> magnitude = Vector.Abs(new Vector<byte>(filtered[i..]).As<byte, sbyte>()).As<sbyte, byte>();
                    Vector.Widen(magnitude, out Vector<ushort> low, out Vector<ushort> high);
                    lanes += low + high;
                }
                Vector.Widen(lanes, out Vector<uint> lowSum, out Vector<uint> highSum);
                sum += Vector.Sum(lowSum + highSum);
            }
        }
        for (; i < filtered.Length; i++)
        {
            byte b = filtered[i];
            sum += b < 128 ? b : 256 - b;
        }
        return sum;
    }
}
