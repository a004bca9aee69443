using System.Numerics;
using MediatorDiT.IO.Pickle;

namespace MediatorDiT.Tests.IO;

public class PickleReaderTests
{
    // pickle.dumps(MIXED, protocol=p) from CPython 3 for
    // MIXED = {'a': [1, -2, 300, 70000, -70000, 2**40, 2**70, -(2**70)], 'b': (1.5, -0.25, None, True, False),
    //          'c': b'\x00\xffxy', 'd': {3: 'three', (1, 'x'): 'tuple-key'}, 'e': {1, 2}, 'f': frozenset({'z'}),
    //          'g': 'héllo ✓'}
    // Protocol 2 writes bytes as _codecs.encode(text, 'latin1') and sets through builtins.set/frozenset;
    // protocol 4 uses FRAME, MEMOIZE, SHORT_BINUNICODE, SHORT_BINBYTES, EMPTY_SET/ADDITEMS and FROZENSET.
    private const string MixedProtocol2 =
        "80027d71002858010000006171015d7102284b014afeffffff4d2c014a701101004a90eefeff8a060000000000018a09000000000000" +
        "0000408a090000000000000000c065580100000062710328473ff800000000000047bfd00000000000004e88897471045801000000" +
        "637105635f636f646563730a656e636f64650a7106580500000000c3bf7879710758060000006c6174696e31710886710952710a58" +
        "0100000064710b7d710c284b0358050000007468726565710d4b01580100000078710e86710f58090000007475706c652d6b657971" +
        "10755801000000657111635f5f6275696c74696e5f5f0a7365740a71125d7113284b014b02658571145271155801000000667116635f" +
        "5f6275696c74696e5f5f0a66726f7a656e7365740a71175d711858010000007a71196185711a52711b580100000067711c580a000000" +
        "68c3a96c6c6f20e29c93711d752e";

    private const string MixedProtocol4 =
        "800495b4000000000000007d94288c0161945d94284b014afeffffff4d2c014a701101004a90eefeff8a060000000000018a0900000000" +
        "00000000408a090000000000000000c0658c01629428473ff800000000000047bfd00000000000004e888974948c016394430400ff78" +
        "79948c0164947d94284b038c057468726565944b018c01789486948c097475706c652d6b657994758c0165948f94284b014b02908c01" +
        "6694288c017a9491948c0167948c0a68c3a96c6c6f20e29c9394752e";

    // pickle.dumps(argparse.Namespace(model='SiT-S/2', image_size=256, lr=1e-4), protocol=p)
    private const string NamespaceProtocol2 =
        "80026361726770617273650a4e616d6573706163650a7100298171017d71022858050000006d6f64656c710358070000005369542d53" +
        "2f327104580a000000696d6167655f73697a6571054d000158020000006c727106473f1a36e2eb1c432d75622e";

    private const string NamespaceProtocol4 =
        "80049552000000000000008c086172677061727365948c094e616d6573706163659493942981947d94288c056d6f64656c948c075369" +
        "542d532f32948c0a696d6167655f73697a65944d00018c026c7294473f1a36e2eb1c432d75622e";

    // od = collections.OrderedDict([('w', 1), ('b', 2)]); od._metadata = {'': {'version': 1}}; pickle.dumps(od, 2)
    // (a PyTorch state dict pickles like this: the attribute arrives through BUILD after the items)
    private const string OrderedDictWithMetadata =
        "800263636f6c6c656374696f6e730a4f726465726564446963740a7100295271012858010000007771024b0158010000006271034b02" +
        "757d710458090000005f6d6574616461746171057d7106580000000071077d7108580700000076657273696f6e71094b01737373622e";

    // class Evil: __reduce__ = lambda self: (os.system, ('echo pwned',)); pickle.dumps(Evil(), 2)
    private const string OsSystemCall =
        "800263706f7369780a73797374656d0a7100580a0000006563686f2070776e656471018571025271032e";

    private static object? Load(string hex) => PickleReader.Load(Convert.FromHexString(hex), "test.pkl");

    [Theory]
    [InlineData(MixedProtocol2)]
    [InlineData(MixedProtocol4)]
    public void ReadsPythonValuesOfEveryKind(string hex)
    {
        var root = Assert.IsType<Dictionary<object, object?>>(Load(hex));
        Assert.Equal(["a", "b", "c", "d", "e", "f", "g"], root.Keys);

        var ints = Assert.IsType<List<object?>>(root["a"]);
        Assert.Equal(new object[] { 1L, -2L, 300L, 70000L, -70000L, 1L << 40 }, ints.Take(6));
        Assert.Equal(BigInteger.Pow(2, 70), ints[6]);
        Assert.Equal(-BigInteger.Pow(2, 70), ints[7]);

        var tuple = Assert.IsType<object?[]>(root["b"]);
        Assert.Equal(new object?[] { 1.5, -0.25, null, true, false }, tuple);

        Assert.Equal(new byte[] { 0x00, 0xFF, (byte)'x', (byte)'y' }, root["c"]);

        var nested = Assert.IsType<Dictionary<object, object?>>(root["d"]);
        Assert.Equal("three", nested[3L]);
        Assert.Equal("tuple-key", nested[new object?[] { 1L, "x" }]); // tuple keys compare by value

        Assert.True(Assert.IsType<HashSet<object>>(root["e"]).SetEquals([1L, 2L]));
        Assert.True(Assert.IsType<HashSet<object>>(root["f"]).SetEquals(["z"]));
        Assert.Equal("héllo ✓", root["g"]);
    }

    [Theory]
    [InlineData(NamespaceProtocol2)]
    [InlineData(NamespaceProtocol4)]
    public void UnknownClassesBecomeInertObjectsWithReadableState(string hex)
    {
        var args = Assert.IsType<PickledObject>(Load(hex));
        Assert.Equal("argparse", args.Module);
        Assert.Equal("Namespace", args.Name);
        Assert.Empty(args.Args);
        Assert.Equal("SiT-S/2", args.GetAttribute("model"));
        Assert.Equal(256L, args.GetAttribute("image_size"));
        Assert.Equal(1e-4, args.GetAttribute("lr"));
        Assert.Null(args.GetAttribute("absent"));
    }

    [Fact]
    public void OrderedDictAttributesDoNotBecomeItems()
    {
        var dict = Assert.IsType<Dictionary<object, object?>>(Load(OrderedDictWithMetadata));
        Assert.Equal(["w", "b"], dict.Keys);
        Assert.Equal(1L, dict["w"]);
        Assert.Equal(2L, dict["b"]);
    }

    [Fact]
    public void CallsToArbitraryFunctionsAreNeverExecuted()
    {
        var call = Assert.IsType<PickledObject>(Load(OsSystemCall));
        Assert.Equal(new PickleGlobal("posix", "system"), call.Type);
        Assert.Equal(new object?[] { "echo pwned" }, call.Args);
    }

    [Fact]
    public void SharedReferencesThroughTheMemoStayShared()
    {
        // pickle.dumps(([1, 2], same list), 2): the second element is a BINGET of the first.
        var pair = Assert.IsType<object?[]>(Load("80025d7100284b014b026568008671012e"));
        Assert.Same(pair[0], pair[1]);
        Assert.Equal(new object?[] { 1L, 2L }, (List<object?>)pair[0]!);
    }

    [Fact]
    public void ReadsRarerOpcodes()
    {
        byte[] pickle = new PickleBuilder()
            .Proto(2)
            .Mark()
                .Mark().Op('d') // DICT of no items: {}
                .Mark().Int(1).Str("one").Op('d') // {1: 'one'}
                .Mark().Int(5).Int(6).Op('l') // LIST [5, 6]
                .Int(7).Op('2').Op(0x87) // DUP then TUPLE3 (list, 7, 7)
                .Op(0x8B).Raw(9, 0, 0, 0).Raw(0, 0, 0, 0, 0, 0, 0, 0, 1) // LONG4: 2**64
                .Op(0x8D).Raw(2, 0, 0, 0, 0, 0, 0, 0).Raw((byte)'h', (byte)'i') // BINUNICODE8 'hi'
                .Op('B').Raw(3, 0, 0, 0).Raw(7, 8, 9) // BINBYTES
                .Op('U').Raw(2).Raw((byte)'p', (byte)'y') // SHORT_BINSTRING 'py'
                .Op('T').Raw(1, 0, 0, 0).Raw(0xE9) // BINSTRING: Latin-1 'é'
                .Op('J').Raw(0xFF, 0xFF, 0xFF, 0xFF) // BININT -1
                .Int(99).Op('0') // pushed then POP
                .Mark().Int(1).Int(2).Op('1') // POP_MARK discards the marked items
                .Int(3).Put(300).Op('0').Get(300) // LONG_BINPUT / LONG_BINGET
            .Tuple()
            .Stop()
            .ToArray();
        var items = Assert.IsType<object?[]>(PickleReader.Load(pickle, "test.pkl"));
        Assert.Equal(10, items.Length);
        Assert.Empty(Assert.IsType<Dictionary<object, object?>>(items[0]));
        Assert.Equal("one", Assert.IsType<Dictionary<object, object?>>(items[1])[1L]);
        var triple = Assert.IsType<object?[]>(items[2]);
        Assert.Equal(new object?[] { 5L, 6L }, Assert.IsType<List<object?>>(triple[0]));
        Assert.Equal(7L, triple[1]);
        Assert.Equal(7L, triple[2]);
        Assert.Equal(BigInteger.Pow(2, 64), items[3]);
        Assert.Equal("hi", items[4]);
        Assert.Equal(new byte[] { 7, 8, 9 }, items[5]);
        Assert.Equal("py", items[6]);
        Assert.Equal("é", items[7]);
        Assert.Equal(-1L, items[8]);
        Assert.Equal(3L, items[9]);
    }

    [Fact]
    public void NewObjExKeepsKeywordArguments()
    {
        byte[] pickle = new PickleBuilder()
            .Proto(4)
            .Str("mymodule").Str("Config").Op(0x93) // STACK_GLOBAL
            .Mark().Int(1).Tuple()
            .EmptyDict().Str("depth").Int(12).Op('s') // {'depth': 12} via SETITEM
            .Op(0x92) // NEWOBJ_EX
            .Stop()
            .ToArray();
        var obj = Assert.IsType<PickledObject>(PickleReader.Load(pickle, "test.pkl"));
        Assert.Equal("mymodule.Config", obj.Type.FullName);
        Assert.Equal(new object?[] { 1L }, obj.Args);
        Assert.Equal(12L, obj.Kwargs["depth"]);
    }

    [Fact]
    public void UnknownOpcodeNamesSourceOpcodeAndPosition()
    {
        byte[] pickle = new PickleBuilder().Proto(2).EmptyDict().Op(0xFE).Stop().ToArray();
        var error = Assert.Throws<MediatorDiTException>(() => PickleReader.Load(pickle, "weights.pt (entry a/data.pkl)"));
        Assert.Contains("weights.pt (entry a/data.pkl)", error.Message);
        Assert.Contains("0xFE", error.Message);
        Assert.Contains("byte 3", error.Message);
    }

    [Fact]
    public void TruncatedPickleIsAClearError()
    {
        byte[] full = Convert.FromHexString(NamespaceProtocol2);
        var error = Assert.Throws<MediatorDiTException>(() => PickleReader.Load(full.AsMemory(0, 40), "cut.pkl"));
        Assert.Contains("cut.pkl", error.Message);
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void StackUnderflowIsAClearError()
    {
        byte[] pickle = new PickleBuilder().Proto(2).Op('R').Stop().ToArray(); // REDUCE on an empty stack
        var error = Assert.Throws<MediatorDiTException>(() => PickleReader.Load(pickle, "bad.pkl"));
        Assert.Contains("bad.pkl", error.Message);
        Assert.Contains("underflow", error.Message);
    }

    [Fact]
    public void MemoReadBeforeWriteIsAClearError()
    {
        byte[] pickle = new PickleBuilder().Proto(2).Get(4).Stop().ToArray();
        var error = Assert.Throws<MediatorDiTException>(() => PickleReader.Load(pickle, "bad.pkl"));
        Assert.Contains("memo slot 4", error.Message);
    }

    [Fact]
    public void PersistentIdsNeedALoader()
    {
        byte[] pickle = new PickleBuilder().Proto(2).Str("id").BinPersId().Stop().ToArray();
        var error = Assert.Throws<MediatorDiTException>(() => PickleReader.Load(pickle, "bad.pkl"));
        Assert.Contains("BINPERSID", error.Message);

        var reader = new PickleReader(pickle, "ok.pkl") { PersistentLoad = id => $"resolved {id}" };
        Assert.Equal("resolved id", reader.Load());
    }
}
