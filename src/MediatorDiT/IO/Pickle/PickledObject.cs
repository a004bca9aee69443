namespace MediatorDiT.IO.Pickle;

/// <summary>
/// An instance of a Python class the reader does not know (argparse.Namespace, a custom config
/// class, ...), kept as inert data instead of being constructed: the class it names, the
/// arguments it would have been called with, and the state BUILD would have set. Items and
/// ListItems hold what SETITEMS/APPENDS added when the class is a dict or list subclass.
/// </summary>
internal sealed class PickledObject
{
    public PickleGlobal Type { get; }
    public IReadOnlyList<object?> Args { get; }

    /// <summary>Keyword arguments of a NEWOBJ_EX construction; empty otherwise.</summary>
    public IReadOnlyDictionary<object, object?> Kwargs { get; }

    /// <summary>What BUILD passed: usually a dict of attributes (the object's __dict__), else null.</summary>
    public object? State { get; internal set; }

    public Dictionary<object, object?> Items { get; } = new(PickleKeyComparer.Instance);
    public List<object?> ListItems { get; } = [];

    public PickledObject(PickleGlobal type, IReadOnlyList<object?> args, IReadOnlyDictionary<object, object?>? kwargs = null)
    {
        Type = type;
        Args = args;
        Kwargs = kwargs ?? new Dictionary<object, object?>();
    }

    public string Module => Type.Module;
    public string Name => Type.Name;

    /// <summary>
    /// The attribute dict from <see cref="State"/> (for a (dict, slots) state tuple, the two merged),
    /// or an empty dict when the object has no state.
    /// </summary>
    public IReadOnlyDictionary<object, object?> Attributes
    {
        get
        {
            var attributes = new Dictionary<object, object?>(PickleKeyComparer.Instance);
            IEnumerable<object?> parts = State is object?[] { Length: 2 } pair ? pair : [State];
            foreach (object? part in parts)
            {
                if (part is Dictionary<object, object?> dict)
                    foreach (var (key, value) in dict) attributes[key] = value;
            }
            return attributes;
        }
    }

    /// <summary>One attribute by name (args.model, args.image_size), or null when absent.</summary>
    public object? GetAttribute(string name) => Attributes.TryGetValue(name, out object? value) ? value : null;

    public override string ToString() => $"<inert {Type.FullName}>";
}
