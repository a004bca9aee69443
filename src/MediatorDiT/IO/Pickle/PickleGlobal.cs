namespace MediatorDiT.IO.Pickle;

/// <summary>
/// A reference to a Python class or function by module and name (what GLOBAL pushes), kept as
/// data: nothing is imported or looked up. Storage classes (torch.FloatStorage) and dtypes
/// (torch.float16) reach the object graph in this form.
/// </summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => $"{Module}.{Name}";

    public override string ToString() => FullName;
}
