using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MediatorDiT.IO;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.IO;

public class SafeTensorsRoundTripTests
{
    private static readonly float[] Values = [0f, 1f, -1.5f, 0.25f, 1024f, -3.75f];

    [Fact]
    public void RoundTripsEveryDTypeWithShapesValuesAndMetadata()
    {
        using var dir = new TempDirectory();
        string path = dir.File("mixed.safetensors");
        long[] labels = [long.MinValue, -1, 0, 7, long.MaxValue, 42];
        var tensors = new Dictionary<string, StoredTensor>
        {
            ["w.f32"] = StoredTensor.FromFloat(new Tensor(Values, 2, 3)),
            ["w.f16"] = StoredTensor.FromFloat(Values, [3, 2], DType.F16),
            ["w.bf16"] = StoredTensor.FromFloat(Values, [6], DType.BF16),
            ["w.f64"] = StoredTensor.FromFloat(Values, [1, 6], DType.F64),
            ["labels"] = StoredTensor.FromInt64(labels, [2, 3]),
        };
        var metadata = new Dictionary<string, string> { ["config"] = "{\"hidden_size\": 64}", ["format"] = "pt" };

        SafeTensors.Write(path, tensors, metadata);
        SafeTensorsFile file = SafeTensors.Read(path);

        Assert.Equal(path, file.Path);
        Assert.Equal(metadata, file.Metadata);
        Assert.Equal(tensors.Keys.Order(), file.Tensors.Keys.Order());
        foreach (var (name, written) in tensors)
        {
            StoredTensor read = file.Tensors[name];
            Assert.Equal(written.DType, read.DType);
            Assert.Equal(written.Shape, read.Shape);
            Assert.Equal(written.Bytes.ToArray(), read.Bytes.ToArray());
        }
        // These values are exact in every float format, so they come back unchanged.
        foreach (string name in new[] { "w.f32", "w.f16", "w.bf16", "w.f64" })
            Assert.Equal(Values, file.GetFloat(name).Span.ToArray());
        Assert.Equal([2, 3], file.GetFloat("w.f32").Shape);
        Assert.Equal(labels, file.GetInt64("labels"));
    }

    [Fact]
    public void HeaderIsPaddedJsonAndDataStartsEightByteAligned()
    {
        using var dir = new TempDirectory();
        string path = dir.File("aligned.safetensors");
        var tensors = new Dictionary<string, StoredTensor>
        {
            ["b"] = StoredTensor.FromFloat([1f, 2f, 3f], [3], DType.BF16),
            ["a"] = StoredTensor.FromFloat([1f], [1], DType.F32),
            ["z"] = StoredTensor.FromInt64([5], [1]),
            ["c"] = StoredTensor.FromFloat([1f, 2f], [2], DType.F64),
        };
        SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["k"] = "v" });

        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + headerLength) % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.StartsWith("{", header);
        Assert.EndsWith("}", header.TrimEnd(' ')); // the JSON, then only space padding

        using JsonDocument json = JsonDocument.Parse(header);
        var names = json.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        // metadata first, then by element size (8, 8, 4, 2 bytes), ties by name
        Assert.Equal(["__metadata__", "c", "z", "a", "b"], names);
        Assert.Equal("v", json.RootElement.GetProperty("__metadata__").GetProperty("k").GetString());
        JsonElement c = json.RootElement.GetProperty("c");
        Assert.Equal("F64", c.GetProperty("dtype").GetString());
        Assert.Equal([0L, 16L], c.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
        JsonElement b = json.RootElement.GetProperty("b");
        Assert.Equal("BF16", b.GetProperty("dtype").GetString());
        Assert.Equal([3], b.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([28L, 34L], b.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(8 + headerLength + 34, bytes.Length);
    }

    [Fact]
    public void ZeroSizeAndRankZeroTensorsRoundTrip()
    {
        using var dir = new TempDirectory();
        string path = dir.File("edge.safetensors");
        var tensors = new Dictionary<string, StoredTensor>
        {
            ["empty"] = StoredTensor.FromFloat([], [0, 3]),
            ["empty.i64"] = StoredTensor.FromInt64([], [2, 0]),
            ["scalar"] = StoredTensor.FromFloat([2.5f], []),
            ["step"] = StoredTensor.FromInt64([1000], []),
            ["after"] = StoredTensor.FromFloat([7f, 8f], [2]),
        };
        SafeTensors.Write(path, tensors);
        SafeTensorsFile file = SafeTensors.Read(path);

        Assert.Empty(file.Metadata);
        Assert.Equal([0, 3], file.Tensors["empty"].Shape);
        Assert.Equal(0, file.Tensors["empty"].ElementCount);
        Assert.Equal(0, file.GetFloat("empty").Length);
        Assert.Empty(file.GetInt64("empty.i64"));
        Assert.Empty(file.Tensors["scalar"].Shape);
        Assert.Equal(1, file.Tensors["scalar"].ElementCount);
        Assert.Equal([2.5f], file.GetFloat("scalar").Span.ToArray());
        Assert.Equal([1000L], file.GetInt64("step"));
        Assert.Equal([7f, 8f], file.GetFloat("after").Span.ToArray());
    }

    [Fact]
    public void ParseOfInMemoryBytesMatchesRead()
    {
        using var dir = new TempDirectory();
        string path = dir.File("mem.safetensors");
        SafeTensors.Write(path, new Dictionary<string, StoredTensor> { ["x"] = StoredTensor.FromFloat([1f, -2f], [2]) });
        SafeTensorsFile parsed = SafeTensors.Parse(File.ReadAllBytes(path), "mem");
        Assert.Equal([1f, -2f], parsed.GetFloat("x").Span.ToArray());
        Assert.Equal("mem", parsed.Path);
    }

    [Fact]
    public void HalfFormatsRoundToNearestEvenWhenStored()
    {
        // 1 + 2^-8 is a bf16 tie between 1 and 1 + 2^-7: it rounds to the even neighbour, 1.
        // 1 + 3·2^-8 is a tie between 1 + 2^-7 and 1 + 2^-6: it rounds to 1 + 2^-6.
        StoredTensor bf16 = StoredTensor.FromFloat([1.00390625f, 1.01171875f, 1.0078125f], [3], DType.BF16);
        Assert.Equal([1f, 1.015625f, 1.0078125f], bf16.ToFloat().Span.ToArray());
        StoredTensor f16 = StoredTensor.FromFloat([0.1f], [1], DType.F16);
        Assert.Equal((float)(Half)0.1f, f16.ToFloat().Span[0]);
        Assert.NotEqual(0.1f, f16.ToFloat().Span[0]);
    }

    [Fact]
    public void WriteReplacesAnExistingFileAndLeavesNoTemporaryFiles()
    {
        using var dir = new TempDirectory();
        string path = dir.File("model.safetensors");
        File.WriteAllText(path, "old contents");

        SafeTensors.Write(path, new Dictionary<string, StoredTensor> { ["x"] = StoredTensor.FromFloat([3f], [1]) });
        SafeTensors.Write(path, new Dictionary<string, StoredTensor> { ["y"] = StoredTensor.FromFloat([4f, 5f], [2]) });

        Assert.Equal([path], Directory.GetFiles(dir.Path));
        SafeTensorsFile file = SafeTensors.Read(path);
        Assert.False(file.Contains("x"));
        Assert.Equal([4f, 5f], file.GetFloat("y").Span.ToArray());
    }

    [Fact]
    public void FailedWriteKeepsTheOldFileAndRemovesItsTemporaryFile()
    {
        using var dir = new TempDirectory();
        string path = dir.File("model.safetensors");
        SafeTensors.Write(path, new Dictionary<string, StoredTensor> { ["x"] = StoredTensor.FromFloat([3f], [1]) });
        byte[] before = File.ReadAllBytes(path);

        // A tensor whose bytes fail to materialise midway through the write.
        var failing = new StoredTensor(DType.F32, [4], () => throw new IOException("disk went away"));
        var tensors = new Dictionary<string, StoredTensor> { ["a"] = StoredTensor.FromFloat([1f], [1]), ["b"] = failing };
        var error = Assert.Throws<MediatorDiTException>(() => SafeTensors.Write(path, tensors));

        Assert.Contains("model.safetensors", error.Message);
        Assert.Equal([path], Directory.GetFiles(dir.Path));
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void WriteIntoAMissingFolderIsAClearError()
    {
        using var dir = new TempDirectory();
        string path = Path.Combine(dir.Path, "no-such-folder", "w.safetensors");
        var error = Assert.Throws<MediatorDiTException>(() =>
            SafeTensors.Write(path, new Dictionary<string, StoredTensor> { ["x"] = StoredTensor.FromFloat([3f], [1]) }));
        Assert.Contains("w.safetensors", error.Message);
    }

    [Fact]
    public void MetadataKeyCannotBeATensorName()
    {
        using var dir = new TempDirectory();
        var error = Assert.Throws<MediatorDiTException>(() => SafeTensors.Write(dir.File("m.safetensors"),
            new Dictionary<string, StoredTensor> { ["__metadata__"] = StoredTensor.FromFloat([3f], [1]) }));
        Assert.Contains("__metadata__", error.Message);
    }
}
