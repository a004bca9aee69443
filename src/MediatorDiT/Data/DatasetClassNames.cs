namespace MediatorDiT.Data;

/// <summary>Human-readable names of the built-in datasets' classes, label c = names[c].</summary>
public static class DatasetClassNames
{
    /// <summary>Fashion-MNIST's ten clothing classes.</summary>
    public static IReadOnlyList<string> FashionMnist { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>MNIST's digits "0" .. "9".</summary>
    public static IReadOnlyList<string> Mnist { get; } = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    /// <summary>The names of a built-in dataset's classes, or "class c" for any other (or a mismatched count).</summary>
    public static IReadOnlyList<string> For(string? dataset, int classes)
    {
        IReadOnlyList<string>? known = dataset switch { "fashion-mnist" => FashionMnist, "mnist" => Mnist, _ => null };
        return known is not null && known.Count == classes ? known : Enumerable.Range(0, classes).Select(c => $"class {c}").ToArray();
    }
}
