using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace MediatorDiT.IO.Pickle;

/// <summary>
/// A safe unpickler: the pickle virtual machine (a value stack, a mark stack and a memo) run over
/// the opcode stream, producing plain .NET data. It never imports or executes anything: GLOBAL
/// yields a <see cref="PickleGlobal"/> name, calls go to a small whitelist of data-only
/// constructors (and an optional <see cref="CallHandler"/>), and every other call becomes an inert
/// <see cref="PickledObject"/>.
/// <para>
/// Python values map to: dict → Dictionary&lt;object, object?&gt; (with <see cref="PickleKeyComparer"/>),
/// list → List&lt;object?&gt;, tuple → object?[], str → string, bytes → byte[], int → long (BigInteger
/// when larger), float → double, bool, None → null, set/frozenset → HashSet&lt;object&gt;.
/// </para>
/// </summary>
internal sealed class PickleReader
{
    private const int HighestProtocol = 5;

    // Invalid UTF-8 in a string opcode means corruption; fail instead of substituting U+FFFD.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlyMemory<byte> _data;
    private readonly string _source;
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];
    private int _position;
    private int _opcodePosition;

    /// <param name="data">The pickle bytes.</param>
    /// <param name="source">How errors name the data, e.g. "model.pt (entry archive/data.pkl)".</param>
    public PickleReader(ReadOnlyMemory<byte> data, string source)
    {
        _data = data;
        _source = source;
    }

    /// <summary>Resolves BINPERSID ids (PyTorch's storage references); without it such ids are an error.</summary>
    public Func<object?, object?>? PersistentLoad { get; init; }

    /// <summary>Consulted first for every REDUCE/NEWOBJ call.</summary>
    public PickleCallHandler? CallHandler { get; init; }

    /// <summary>Parses a complete pickle (up to STOP) and returns its top-level value.</summary>
    public static object? Load(ReadOnlyMemory<byte> data, string source) => new PickleReader(data, source).Load();

    public object? Load()
    {
        _stack.Clear();
        _marks.Clear();
        _memo.Clear();
        _position = 0;
        try
        {
            while (true)
            {
                _opcodePosition = _position;
                byte opcode = ReadByte();
                if (opcode == (byte)PickleOpcode.Stop) return Pop();
                Execute(opcode);
            }
        }
        catch (Exception ex) when (ex is InvalidCastException or ArgumentException or OverflowException
                                       or InvalidOperationException or FormatException)
        {
            // Invalid UTF-8 (DecoderFallbackException is an ArgumentException) and similar data faults.
            throw Error($"the pickle is malformed ({ex.Message.TrimEnd('.')})", ex);
        }
    }

    private void Execute(byte opcode)
    {
        switch ((PickleOpcode)opcode)
        {
            case PickleOpcode.Proto:
                int protocol = ReadByte();
                if (protocol > HighestProtocol) throw Error($"pickle protocol {protocol} is newer than the highest known ({HighestProtocol})");
                break;
            case PickleOpcode.Frame:
                ReadBytes(8); // frame length: framing only groups opcodes for buffered reading
                break;

            case PickleOpcode.Global:
                Push(new PickleGlobal(ReadLine(), ReadLine()));
                break;
            case PickleOpcode.StackGlobal:
            {
                string name = PopAs<string>("STACK_GLOBAL name");
                string module = PopAs<string>("STACK_GLOBAL module");
                Push(new PickleGlobal(module, name));
                break;
            }

            case PickleOpcode.BinPut: _memo[ReadByte()] = Peek(); break;
            case PickleOpcode.LongBinPut: _memo[ReadUInt32()] = Peek(); break;
            case PickleOpcode.Memoize: _memo[_memo.Count] = Peek(); break;
            case PickleOpcode.BinGet: Push(MemoGet(ReadByte())); break;
            case PickleOpcode.LongBinGet: Push(MemoGet(ReadUInt32())); break;

            case PickleOpcode.Mark: _marks.Push(_stack.Count); break;
            case PickleOpcode.Pop:
                if (_stack.Count > CurrentMarkBase) Pop();
                else PopMark();
                break;
            case PickleOpcode.PopMark: PopMark(); break;
            case PickleOpcode.Dup: Push(Peek()); break;

            case PickleOpcode.None: Push(null); break;
            case PickleOpcode.NewTrue: Push(true); break;
            case PickleOpcode.NewFalse: Push(false); break;
            case PickleOpcode.BinInt: Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break;
            case PickleOpcode.BinInt1: Push((long)ReadByte()); break;
            case PickleOpcode.BinInt2: Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break;
            case PickleOpcode.Long1: Push(ReadLong(ReadByte())); break;
            case PickleOpcode.Long4:
            {
                int length = BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4));
                if (length < 0) throw Error($"LONG4 has a negative length {length}");
                Push(ReadLong(length));
                break;
            }
            case PickleOpcode.BinFloat: Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break;

            case PickleOpcode.BinUnicode: Push(ReadUtf8(ReadUInt32())); break;
            case PickleOpcode.ShortBinUnicode: Push(ReadUtf8(ReadByte())); break;
            case PickleOpcode.BinUnicode8: Push(ReadUtf8(ReadUInt64())); break;
            // Python 2 str: bytes of unknown encoding; Latin-1 maps each byte to one char losslessly.
            case PickleOpcode.BinString: Push(Encoding.Latin1.GetString(ReadBytes(CheckLength(BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4)))))); break;
            case PickleOpcode.ShortBinString: Push(Encoding.Latin1.GetString(ReadBytes(ReadByte()))); break;
            case PickleOpcode.BinBytes: Push(ReadBytes(CheckLength(ReadUInt32())).ToArray()); break;
            case PickleOpcode.ShortBinBytes: Push(ReadBytes(ReadByte()).ToArray()); break;
            case PickleOpcode.BinBytes8:
            case PickleOpcode.ByteArray8: Push(ReadBytes(CheckLength(ReadUInt64())).ToArray()); break;

            case PickleOpcode.EmptyDict: Push(NewDict()); break;
            case PickleOpcode.Dict:
            {
                List<object?> items = PopMark();
                var dict = NewDict();
                SetItems(dict, items);
                Push(dict);
                break;
            }
            case PickleOpcode.EmptyList: Push(new List<object?>()); break;
            case PickleOpcode.List: Push(PopMark()); break;
            case PickleOpcode.EmptyTuple: Push(Array.Empty<object?>()); break;
            case PickleOpcode.Tuple: Push(PopMark().ToArray()); break;
            case PickleOpcode.Tuple1: Push(new[] { Pop() }); break;
            case PickleOpcode.Tuple2:
            {
                object? second = Pop(), first = Pop();
                Push(new[] { first, second });
                break;
            }
            case PickleOpcode.Tuple3:
            {
                object? third = Pop(), second = Pop(), first = Pop();
                Push(new[] { first, second, third });
                break;
            }
            case PickleOpcode.EmptySet: Push(new HashSet<object>(PickleKeyComparer.Instance)); break;
            case PickleOpcode.FrozenSet: Push(NewSet(PopMark())); break;
            case PickleOpcode.AddItems:
            {
                List<object?> items = PopMark();
                if (Peek() is not HashSet<object> set) throw Error($"ADDITEMS needs a set below the mark but found {Describe(Peek())}");
                foreach (object? item in items) set.Add(CheckKey(item));
                break;
            }

            case PickleOpcode.SetItem:
            {
                object? value = Pop(), key = Pop();
                SetItems(Peek(), [key, value]);
                break;
            }
            case PickleOpcode.SetItems:
            {
                List<object?> items = PopMark();
                SetItems(Peek(), items);
                break;
            }
            case PickleOpcode.Append:
            {
                object? item = Pop();
                AppendItems(Peek(), [item]);
                break;
            }
            case PickleOpcode.Appends:
            {
                List<object?> items = PopMark();
                AppendItems(Peek(), items);
                break;
            }

            case PickleOpcode.Reduce:
            {
                object? args = Pop(), callable = Pop();
                Push(Call(callable, args, kwargs: null));
                break;
            }
            case PickleOpcode.NewObj:
            {
                object? args = Pop(), cls = Pop();
                Push(Call(cls, args, kwargs: null));
                break;
            }
            case PickleOpcode.NewObjEx:
            {
                object? kwargs = Pop(), args = Pop(), cls = Pop();
                if (kwargs is not Dictionary<object, object?> kwargsDict) throw Error($"NEWOBJ_EX needs a dict of keyword arguments but found {Describe(kwargs)}");
                Push(Call(cls, args, kwargsDict));
                break;
            }
            case PickleOpcode.Build:
            {
                object? state = Pop();
                Build(Peek(), state);
                break;
            }
            case PickleOpcode.BinPersId:
            {
                object? pid = Pop();
                if (PersistentLoad is null) throw Error("the pickle references external data (BINPERSID) but no persistent-id loader was given");
                Push(PersistentLoad(pid));
                break;
            }

            default:
                string shown = opcode is >= 0x21 and < 0x7F ? $" ('{(char)opcode}')" : "";
                throw new MediatorDiTException(
                    $"{_source}: unsupported pickle opcode 0x{opcode:X2}{shown} at byte {_opcodePosition}; the file is corrupt or uses a pickle feature this reader does not handle.");
        }
    }

    private object? Call(object? callable, object? args, Dictionary<object, object?>? kwargs)
    {
        if (callable is not PickleGlobal global)
            throw Error($"a call needs a class or function but found {Describe(callable)}");
        if (args is not object?[] argTuple)
            throw Error($"the arguments of {global.FullName} must be a tuple but are {Describe(args)}");
        if (kwargs is null or { Count: 0 })
        {
            if (CallHandler is not null && CallHandler(global, argTuple, out object? handled)) return handled;
            if (TryConstructBuiltin(global, argTuple, out object? built)) return built;
        }
        return new PickledObject(global, argTuple, kwargs);
    }

    /// <summary>Standard-library constructors that only build data: collections and byte strings.</summary>
    private bool TryConstructBuiltin(PickleGlobal global, object?[] args, out object? result)
    {
        result = null;
        switch (global.Module, global.Name)
        {
            case ("collections", "OrderedDict"):
            case ("builtins", "dict"):
            case ("__builtin__", "dict"):
            {
                var dict = NewDict();
                if (args.Length > 0 && args[0] is IEnumerable<object?> pairs)
                {
                    foreach (object? pair in pairs)
                    {
                        if (pair is not (object?[] or List<object?>) || ((IList<object?>)pair!).Count != 2)
                            throw Error($"{global.FullName} expects (key, value) pairs but got {Describe(pair)}");
                        var kv = (IList<object?>)pair;
                        dict[CheckKey(kv[0])] = kv[1];
                    }
                }
                result = dict;
                return true;
            }
            case ("builtins", "set" or "frozenset"):
            case ("__builtin__", "set" or "frozenset"):
                result = NewSet(args.Length > 0 && args[0] is IEnumerable<object?> items ? items : []);
                return true;
            case ("builtins", "bytearray" or "bytes") when args.Length == 0:
                result = Array.Empty<byte>();
                return true;
            case ("builtins", "bytearray" or "bytes") when args is [byte[] bytes]:
                result = bytes;
                return true;
            // Protocol 2 pickles Python 3 bytes as _codecs.encode(text, "latin1").
            case ("_codecs", "encode") when args is [string text, string encoding]
                                            && encoding.Equals("latin1", StringComparison.OrdinalIgnoreCase):
                result = Encoding.Latin1.GetBytes(text);
                return true;
            default:
                return false;
        }
    }

    private void Build(object? target, object? state)
    {
        switch (target)
        {
            case PickledObject obj:
                if (obj.State is Dictionary<object, object?> existing && state is Dictionary<object, object?> more)
                    foreach (var (key, value) in more) existing[key] = value;
                else obj.State = state;
                break;
            // OrderedDict's state is instance attributes (a state_dict's `_metadata`), not items:
            // adding it to the dict would invent keys. Tensors and lists likewise carry only attributes.
            case Dictionary<object, object?>:
            case List<object?>:
            case HashSet<object>:
            case StoredTensor:
                break;
            default:
                throw Error($"BUILD cannot set state on {Describe(target)}");
        }
    }

    private void SetItems(object? target, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Error($"SETITEMS needs key/value pairs but got {items.Count} items");
        Dictionary<object, object?> dict = target switch
        {
            Dictionary<object, object?> d => d,
            PickledObject obj => obj.Items,
            _ => throw Error($"SETITEM(S) needs a dict below the items but found {Describe(target)}"),
        };
        for (int i = 0; i < items.Count; i += 2) dict[CheckKey(items[i])] = items[i + 1];
    }

    private void AppendItems(object? target, List<object?> items)
    {
        List<object?> list = target switch
        {
            List<object?> l => l,
            PickledObject obj => obj.ListItems,
            _ => throw Error($"APPEND(S) needs a list below the items but found {Describe(target)}"),
        };
        list.AddRange(items);
    }

    private static Dictionary<object, object?> NewDict() => new(PickleKeyComparer.Instance);

    private HashSet<object> NewSet(IEnumerable<object?> items)
    {
        var set = new HashSet<object>(PickleKeyComparer.Instance);
        foreach (object? item in items) set.Add(CheckKey(item));
        return set;
    }

    /// <summary>Dict keys and set items must be hashable in Python; null (None) also cannot be a .NET key.</summary>
    private object CheckKey(object? key) => key switch
    {
        null => throw Error("None as a dict key or set item is not supported"),
        List<object?> or Dictionary<object, object?> or HashSet<object> => throw Error($"{Describe(key)} cannot be a dict key or set item"),
        _ => key,
    };

    // ---- stack, marks and memo ----

    private int CurrentMarkBase => _marks.Count > 0 ? _marks.Peek() : 0;

    private void Push(object? value) => _stack.Add(value);

    private object? Pop()
    {
        if (_stack.Count <= CurrentMarkBase) throw Error("the value stack is empty (stack underflow)");
        object? value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private object? Peek()
    {
        if (_stack.Count <= CurrentMarkBase) throw Error("the value stack is empty (stack underflow)");
        return _stack[^1];
    }

    private T PopAs<T>(string what)
    {
        object? value = Pop();
        return value is T typed ? typed : throw Error($"{what} must be a {typeof(T).Name} but is {Describe(value)}");
    }

    /// <summary>Removes and returns everything above the latest MARK.</summary>
    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Error("no MARK is open");
        int start = _marks.Pop();
        List<object?> items = _stack.GetRange(start, _stack.Count - start);
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    private object? MemoGet(long index) =>
        _memo.TryGetValue(index, out object? value) ? value : throw Error($"memo slot {index} is read before it was written");

    // ---- reading the byte stream ----

    private byte ReadByte()
    {
        if (_position >= _data.Length) throw Truncated(1);
        return _data.Span[_position++];
    }

    private ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0 || count > _data.Length - _position) throw Truncated(count);
        ReadOnlySpan<byte> bytes = _data.Span.Slice(_position, count);
        _position += count;
        return bytes;
    }

    private uint ReadUInt32() => BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4));

    private ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8));

    private int CheckLength(long length) =>
        length < 0 || length > _data.Length - _position ? throw Truncated(length) : (int)length;

    private int CheckLength(ulong length) =>
        length > (ulong)(_data.Length - _position) ? throw Truncated(length > long.MaxValue ? long.MaxValue : (long)length) : (int)length;

    private string ReadUtf8(ulong length) => StrictUtf8.GetString(ReadBytes(CheckLength(length)));

    /// <summary>GLOBAL's operands: newline-terminated ASCII (module, then name).</summary>
    private string ReadLine()
    {
        ReadOnlySpan<byte> rest = _data.Span[_position..];
        int end = rest.IndexOf((byte)'\n');
        if (end < 0) throw Truncated(1);
        _position += end + 1;
        return Encoding.UTF8.GetString(rest[..end]);
    }

    /// <summary>LONG1/LONG4 payload: little-endian two's complement of the given length.</summary>
    private object ReadLong(int length)
    {
        ReadOnlySpan<byte> bytes = ReadBytes(length);
        var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue ? (long)value : (object)value;
    }

    // ---- errors ----

    private MediatorDiTException Truncated(long wanted) =>
        new($"{_source}: the pickle ends at byte {_data.Length} while reading {wanted} more bytes for the opcode at byte {_opcodePosition} (the data is truncated or corrupt).");

    private MediatorDiTException Error(string problem, Exception? inner = null)
    {
        string message = $"{_source}: {problem} (pickle opcode 0x{(_opcodePosition < _data.Length ? _data.Span[_opcodePosition] : 0):X2} at byte {_opcodePosition}).";
        return inner is null ? new MediatorDiTException(message) : new MediatorDiTException(message, inner);
    }

    internal static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"the string '{(s.Length > 40 ? s[..40] + "..." : s)}'",
        long or BigInteger => $"the integer {value}",
        double d => $"the float {d.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
        bool b => b ? "True" : "False",
        object?[] t => $"a tuple of {t.Length}",
        List<object?> l => $"a list of {l.Count}",
        Dictionary<object, object?> d => $"a dict of {d.Count}",
        HashSet<object> => "a set",
        byte[] bytes => $"{bytes.Length} bytes",
        PickleGlobal g => $"the global {g.FullName}",
        PickledObject o => $"an inert {o.Type.FullName} object",
        StoredTensor t => $"a tensor {t}",
        _ => value.GetType().Name,
    };
}
