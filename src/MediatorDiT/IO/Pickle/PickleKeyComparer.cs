using System.Numerics;

namespace MediatorDiT.IO.Pickle;

/// <summary>
/// Equality for unpickled dict and set keys, following Python: tuples (object?[]) compare by their
/// items, and the integer types compare by value whether boxed as long or BigInteger.
/// </summary>
internal sealed class PickleKeyComparer : IEqualityComparer<object>
{
    public static PickleKeyComparer Instance { get; } = new();

    // Deeper tuples than this compare by reference (guards against pathological nesting).
    private const int MaxDepth = 32;

    public new bool Equals(object? x, object? y) => AreEqual(x, y, 0);

    public int GetHashCode(object obj) => Hash(obj, 0);

    private static bool AreEqual(object? x, object? y, int depth)
    {
        if (ReferenceEquals(x, y)) return true;
        if (x is null || y is null) return false;
        if (x is object?[] a && y is object?[] b && depth < MaxDepth)
        {
            if (a.Length != b.Length) return false;
            for (int i = 0; i < a.Length; i++)
                if (!AreEqual(a[i], b[i], depth + 1)) return false;
            return true;
        }
        if (x is BigInteger || y is BigInteger)
            return (x is long or BigInteger) && (y is long or BigInteger) && ToBig(x) == ToBig(y);
        return x.Equals(y);
    }

    private static int Hash(object? obj, int depth)
    {
        switch (obj)
        {
            case null: return 0;
            case object?[] tuple when depth < MaxDepth:
                var hash = new HashCode();
                foreach (object? item in tuple) hash.Add(Hash(item, depth + 1));
                return hash.ToHashCode();
            case BigInteger big when big >= long.MinValue && big <= long.MaxValue:
                return ((long)big).GetHashCode();
            default:
                return obj.GetHashCode();
        }
    }

    private static BigInteger ToBig(object value) => value is long l ? l : (BigInteger)value;
}
