using System.Buffers.Binary;
using System.Text;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// Emits pickle opcodes by hand, to build test pickles (and fake torch.save outputs) opcode by
/// opcode, including opcodes Python's own pickler rarely emits.
/// </summary>
public sealed class PickleBuilder
{
    private readonly MemoryStream _bytes = new();

    public PickleBuilder Op(char opcode) => Op((byte)opcode);

    public PickleBuilder Op(byte opcode)
    {
        _bytes.WriteByte(opcode);
        return this;
    }

    public PickleBuilder Raw(params byte[] bytes)
    {
        _bytes.Write(bytes);
        return this;
    }

    public PickleBuilder Proto(int protocol) => Op(0x80).Raw((byte)protocol);
    public PickleBuilder Stop() => Op('.');
    public PickleBuilder Mark() => Op('(');
    public PickleBuilder Tuple() => Op('t');
    public PickleBuilder EmptyTuple() => Op(')');
    public PickleBuilder EmptyDict() => Op('}');
    public PickleBuilder EmptyList() => Op(']');
    public PickleBuilder SetItems() => Op('u');
    public PickleBuilder Reduce() => Op('R');
    public PickleBuilder False() => Op(0x89);
    public PickleBuilder None() => Op('N');
    public PickleBuilder BinPersId() => Op('Q');
    public PickleBuilder Put(int slot) => slot < 256 ? Op('q').Raw((byte)slot) : Op('r').Raw(Le32(slot));
    public PickleBuilder Get(int slot) => slot < 256 ? Op('h').Raw((byte)slot) : Op('j').Raw(Le32(slot));

    public PickleBuilder Global(string module, string name) =>
        Op('c').Raw(Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));

    public PickleBuilder Str(string text)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        return Op('X').Raw(Le32(utf8.Length)).Raw(utf8);
    }

    /// <summary>The smallest integer opcode for the value, as Python's pickler chooses.</summary>
    public PickleBuilder Int(long value)
    {
        if (value is >= 0 and < 256) return Op('K').Raw((byte)value);
        if (value is >= 0 and < 65536) return Op('M').Raw((byte)value, (byte)(value >> 8));
        if (value is >= int.MinValue and <= int.MaxValue) return Op('J').Raw(Le32((int)value));
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        return Op(0x8A).Raw(8).Raw(bytes);
    }

    public PickleBuilder IntTuple(params long[] values)
    {
        Mark();
        foreach (long v in values) Int(v);
        return Tuple();
    }

    /// <summary>torch's ('storage', torch.&lt;type&gt;, key, 'cpu', numel) persistent id, loaded with BINPERSID.</summary>
    public PickleBuilder StorageRef(string storageType, string key, long numel) =>
        Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(numel).Tuple().BinPersId();

    /// <summary>_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) as torch.save writes it.</summary>
    public PickleBuilder Tensor(string storageType, string key, long numel, long offset, long[] size, long[] stride) =>
        Global("torch._utils", "_rebuild_tensor_v2").TensorArgs(storageType, key, numel, offset, size, stride).Reduce();

    /// <summary>The argument tuple of _rebuild_tensor_v2: (storage, offset, size, stride, False, OrderedDict()).</summary>
    public PickleBuilder TensorArgs(string storageType, string key, long numel, long offset, long[] size, long[] stride) =>
        Mark().StorageRef(storageType, key, numel).Int(offset).IntTuple(size).IntTuple(stride).False()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Tuple();

    public byte[] ToArray() => _bytes.ToArray();

    private static byte[] Le32(int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        return bytes;
    }
}
