using System.Buffers.Binary;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// Checkpoints assembled opcode by opcode in the shape torch.save gives them, covering what the
/// float32 fixtures do not: other storage dtypes, offsets, strided views, zero-dim tensors and wrappers.
/// </summary>
public class TorchFileSyntheticTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static byte[] HalfBytes(params float[] values)
    {
        var bytes = new byte[values.Length * 2];
        HalfPrecision.SingleToHalf(values, bytes);
        return bytes;
    }

    private static byte[] BFloat16Bytes(params float[] values)
    {
        var bytes = new byte[values.Length * 2];
        HalfPrecision.SingleToBFloat16(values, bytes);
        return bytes;
    }

    private static byte[] FloatBytes(params float[] values) => StoredTensor.FromFloat(values, [values.Length]).Bytes.ToArray();

    private static byte[] LongBytes(params long[] values) => StoredTensor.FromInt64(values, [values.Length]).Bytes.ToArray();

    private static byte[] DoubleBytes(double value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteDoubleLittleEndian(bytes, value);
        return bytes;
    }

    private string WriteMixedCheckpoint()
    {
        var p = new PickleBuilder().Proto(2).Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark();
        p.Str("half").Tensor("HalfStorage", "0", 6, 0, [2, 3], [3, 1]);
        p.Str("half.t").Tensor("HalfStorage", "0", 6, 0, [3, 2], [1, 3]); // transposed view, same storage
        p.Str("bf16.tail").Tensor("BFloat16Storage", "1", 5, 2, [3], [1]); // storage offset 2
        p.Str("labels").Tensor("LongStorage", "2", 3, 0, [3], [1]);
        p.Str("scalar").Tensor("DoubleStorage", "3", 1, 0, [], []); // zero-dim
        p.Str("param").Global("torch._utils", "_rebuild_parameter")
            .Mark().Tensor("FloatStorage", "4", 4, 0, [2, 2], [2, 1]).False()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce();
        p.Str("every_other").Tensor("FloatStorage", "5", 8, 1, [2, 2], [4, 2]);
        p.Str("subclass").Global("torch._tensor", "_rebuild_from_type_v2")
            .Mark().Global("torch._utils", "_rebuild_tensor_v2").Global("torch", "Tensor")
            .TensorArgs("FloatStorage", "4", 4, 2, [2], [1]).EmptyDict().Tuple().Reduce();
        p.SetItems();
        // A real state_dict's OrderedDict carries `_metadata` as an attribute, applied by BUILD.
        p.EmptyDict().Str("_metadata").EmptyDict().Op('s').Op('b');
        p.Stop();

        string path = _dir.File("mixed.pt");
        TorchZipWriter.Write(path, p.ToArray(), new Dictionary<string, byte[]>
        {
            ["0"] = HalfBytes(1, 2, 3, 4, 5, 6),
            ["1"] = BFloat16Bytes(10, 20, 30, 40, 50),
            ["2"] = LongBytes(-1, 0, 5_000_000_000),
            ["3"] = DoubleBytes(2.5),
            ["4"] = FloatBytes(1, 2, 3, 4),
            ["5"] = FloatBytes(0, 1, 2, 3, 4, 5, 6, 7),
        });
        return path;
    }

    [Fact]
    public void ReadsEveryStorageDTypeViewAndWrapper()
    {
        var state = TorchFile.LoadStateDict(WriteMixedCheckpoint());

        Assert.Equal(["half", "half.t", "bf16.tail", "labels", "scalar", "param", "every_other", "subclass"], state.Keys);
        Assert.Equal(DType.F16, state["half"].DType);
        Assert.Equal([2, 3], state["half"].Shape);
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], state["half"].ToFloat().Span.ToArray());
        Assert.Equal([3, 2], state["half.t"].Shape);
        Assert.Equal([1f, 4f, 2f, 5f, 3f, 6f], state["half.t"].ToFloat().Span.ToArray());
        Assert.Equal(DType.BF16, state["bf16.tail"].DType);
        Assert.Equal([30f, 40f, 50f], state["bf16.tail"].ToFloat().Span.ToArray());
        Assert.Equal(DType.I64, state["labels"].DType);
        Assert.Equal([-1L, 0L, 5_000_000_000L], state["labels"].ToInt64());
        Assert.Equal(DType.F64, state["scalar"].DType);
        Assert.Empty(state["scalar"].Shape);
        Assert.Equal([2.5f], state["scalar"].ToFloat().Span.ToArray());
        Assert.Equal([1f, 2f, 3f, 4f], state["param"].ToFloat().Span.ToArray());
        Assert.Equal([1f, 3f, 5f, 7f], state["every_other"].ToFloat().Span.ToArray());
        Assert.Equal([3f, 4f], state["subclass"].ToFloat().Span.ToArray());
    }

    [Fact]
    public void HalfPrecisionCheckpointLoadsIntoFloatParameters()
    {
        string path = WriteMixedCheckpoint();
        var model = new TestParameterSet(("half", [2, 3]), ("bf16.tail", [3]), ("scalar", []));
        LoadReport report = StateDict.LoadInto(model, StateDict.Load(path), strict: false, path);
        Assert.Equal([4f, 5f, 6f], model["half"].Value.Span[3..].ToArray());
        Assert.Equal([30f, 40f, 50f], model["bf16.tail"].Value.Span.ToArray());
        Assert.Equal(2.5f, model["scalar"].Value.Span[0]);
        Assert.Equal(["half", "bf16.tail", "scalar"], report.Loaded);
        Assert.Equal(5, report.Unexpected.Count);
    }

    [Fact]
    public void LoadGivesTheObjectGraphWithTensorsRead()
    {
        var root = Assert.IsType<Dictionary<object, object?>>(TorchFile.Load(WriteMixedCheckpoint()));
        Assert.DoesNotContain("_metadata", root.Keys);
        Assert.Equal([5_000_000_000L, 0L, -1L], Assert.IsType<StoredTensor>(root["labels"]).ToInt64().Reverse());
    }

    [Fact]
    public void StorageSmallerThanItsDeclaredSizeIsAClearError()
    {
        byte[] pickle = new PickleBuilder().Proto(2).EmptyDict().Str("w").Tensor("FloatStorage", "0", 10, 0, [10], [1]).Op('s').Stop().ToArray();
        string path = _dir.File("short-storage.pt");
        TorchZipWriter.Write(path, pickle, new Dictionary<string, byte[]> { ["0"] = FloatBytes(1, 2, 3) });
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.LoadStateDict(path));
        Assert.Contains("short-storage.pt", error.Message);
        Assert.Contains("'data/0'", error.Message);
        Assert.Contains("12 bytes", error.Message);
    }

    [Fact]
    public void ViewPastTheEndOfItsStorageIsAClearError()
    {
        byte[] pickle = new PickleBuilder().Proto(2).EmptyDict().Str("w").Tensor("FloatStorage", "0", 4, 2, [2, 2], [2, 1]).Op('s').Stop().ToArray();
        string path = _dir.File("bad-view.pt");
        TorchZipWriter.Write(path, pickle, new Dictionary<string, byte[]> { ["0"] = FloatBytes(1, 2, 3, 4) });
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.LoadStateDict(path));
        Assert.Contains("bad-view.pt", error.Message);
        Assert.Contains("storage '0'", error.Message);
    }

    [Fact]
    public void UnsupportedStorageTypeIsAClearError()
    {
        byte[] pickle = new PickleBuilder().Proto(2).EmptyDict().Str("w").Tensor("ComplexFloatStorage", "0", 1, 0, [1], [1]).Op('s').Stop().ToArray();
        string path = _dir.File("complex.pt");
        TorchZipWriter.Write(path, pickle, new Dictionary<string, byte[]> { ["0"] = new byte[8] });
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.LoadStateDict(path));
        Assert.Contains("complex.pt", error.Message);
        Assert.Contains("torch.ComplexFloatStorage", error.Message);
    }

    [Fact]
    public void PickledModuleInsteadOfStateDictIsAClearError()
    {
        byte[] pickle = new PickleBuilder().Proto(2).Global("models", "SiT").EmptyTuple().Op(0x81).EmptyDict().Op('b').Stop().ToArray();
        string path = _dir.File("module.pt");
        TorchZipWriter.Write(path, pickle, new Dictionary<string, byte[]>());
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.LoadStateDict(path));
        Assert.Contains("module.pt", error.Message);
        Assert.Contains("models.SiT", error.Message);
        Assert.Contains("state_dict()", error.Message);
    }

    [Fact]
    public void StateDictUnderStateDictKeyIsFound()
    {
        byte[] pickle = new PickleBuilder().Proto(2).EmptyDict()
            .Str("epoch").Int(3).Op('s')
            .Str("state_dict").EmptyDict().Str("w").Tensor("FloatStorage", "0", 2, 0, [2], [1]).Op('s').Op('s')
            .Stop().ToArray();
        string path = _dir.File("lightning.pt");
        TorchZipWriter.Write(path, pickle, new Dictionary<string, byte[]> { ["0"] = FloatBytes(8, 9) });
        var state = StateDict.Load(path);
        Assert.Equal([8f, 9f], Assert.Single(state).Value.ToFloat().Span.ToArray());
    }
}
