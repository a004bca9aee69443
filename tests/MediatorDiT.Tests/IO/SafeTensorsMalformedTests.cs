using System.Buffers.Binary;
using System.Text;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

public class SafeTensorsMalformedTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Writes a file from a hand-written header (space-padded to 8 bytes) and data buffer.</summary>
    private string WriteRaw(string name, string header, int dataBytes, ulong? headerLengthOverride = null)
    {
        byte[] json = Encoding.UTF8.GetBytes(header.PadRight((header.Length + 7) / 8 * 8));
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLengthOverride ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        string path = _dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static MediatorDiTException ReadFails(string path, params string[] fragments)
    {
        var error = Assert.Throws<MediatorDiTException>(() => SafeTensors.Read(path));
        Assert.Contains(Path.GetFileName(path), error.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, error.Message);
        return error;
    }

    [Fact]
    public void ValidHandWrittenFileReads()
    {
        // The baseline the malformed variants below differ from by one thing each.
        string path = WriteRaw("ok.safetensors", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}""", 16);
        SafeTensorsFile file = SafeTensors.Read(path);
        Assert.Equal([0f, 0f], file.GetFloat("a").Span.ToArray());
        Assert.Equal([0L], file.GetInt64("b"));
    }

    [Fact]
    public void TruncatedInsideTheHeader()
    {
        string path = _dir.CopyFixture("mediator_grid4_m4.weights.safetensors", "cut-header.safetensors");
        using (var stream = new FileStream(path, FileMode.Open)) stream.SetLength(8 + 1000);
        ReadFails(path, "header length", "truncated");
    }

    [Fact]
    public void TruncatedInsideTheData()
    {
        string path = _dir.CopyFixture("mediator_grid4_m4.weights.safetensors", "cut-data.safetensors");
        long length = new FileInfo(path).Length;
        using (var stream = new FileStream(path, FileMode.Open)) stream.SetLength(length - 100);
        ReadFails(path, "truncated");
    }

    [Fact]
    public void FileShorterThanTheLengthField()
    {
        string path = _dir.File("tiny.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        ReadFails(path, "3 bytes");
    }

    [Fact]
    public void HeaderLengthLargerThanTheFile()
    {
        string path = WriteRaw("long-header.safetensors", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4, headerLengthOverride: 5000);
        ReadFails(path, "5000");
    }

    [Fact]
    public void HeaderLengthAboveTheFormatLimit()
    {
        string path = WriteRaw("huge-header.safetensors", "{}", 0, headerLengthOverride: 200_000_000);
        ReadFails(path, "200000000", "limit");
    }

    [Fact]
    public void HeaderIsNotJson()
    {
        string path = WriteRaw("not-json.safetensors", """{"a": {"dtype": F32}}""", 0);
        ReadFails(path, "not valid JSON");
    }

    [Fact]
    public void HeaderJsonIsNotAnObject()
    {
        string path = WriteRaw("array.safetensors", """[{"dtype":"F32","shape":[1],"data_offsets":[0,4]}]""", 4);
        ReadFails(path, "JSON object");
    }

    [Fact]
    public void HeaderIsNotUtf8()
    {
        string path = WriteRaw("latin1.safetensors", "{\"a\":1}", 0);
        byte[] bytes = File.ReadAllBytes(path);
        bytes[10] = 0xFF; // inside the key
        File.WriteAllBytes(path, bytes);
        ReadFails(path, "UTF-8");
    }

    [Fact]
    public void UnknownDType()
    {
        string path = WriteRaw("dtype.safetensors", """{"weird":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}}""", 4);
        ReadFails(path, "'weird'", "'F7'");
    }

    [Fact]
    public void NegativeShape()
    {
        string path = WriteRaw("negative.safetensors", """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4);
        ReadFails(path, "'a'", "non-negative");
    }

    [Fact]
    public void OffsetsWithAGap()
    {
        string path = WriteRaw("gap.safetensors",
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", 12);
        ReadFails(path, "'b'", "gap", "'a'");
    }

    [Fact]
    public void FirstTensorNotAtOffsetZero()
    {
        string path = WriteRaw("late-start.safetensors", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8);
        ReadFails(path, "'a'", "start at 0");
    }

    [Fact]
    public void OffsetsOverlapping()
    {
        string path = WriteRaw("overlap.safetensors",
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12);
        ReadFails(path, "'b'", "overlaps", "'a'");
    }

    [Fact]
    public void ByteSizeDoesNotMatchDTypeAndShape()
    {
        string path = WriteRaw("size.safetensors", """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8);
        ReadFails(path, "'a'", "needs 12 bytes", "span 8");
    }

    [Fact]
    public void DuplicateKey()
    {
        string path = WriteRaw("duplicate.safetensors",
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8);
        ReadFails(path, "'a'", "twice");
    }

    [Fact]
    public void MetadataValuesMustBeStrings()
    {
        string path = WriteRaw("metadata.safetensors", """{"__metadata__":{"epoch":3},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4);
        ReadFails(path, "'epoch'", "string");
    }

    [Fact]
    public void BytesAfterTheLastTensor()
    {
        string path = WriteRaw("trailing.safetensors", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 12);
        ReadFails(path, "8 bytes follow");
    }

    [Fact]
    public void DataOffsetsMissing()
    {
        string path = WriteRaw("no-offsets.safetensors", """{"a":{"dtype":"F32","shape":[1]}}""", 4);
        ReadFails(path, "'a'", "data_offsets");
    }

    [Fact]
    public void MissingFile()
    {
        ReadFails(_dir.File("absent.safetensors"), "does not exist");
    }
}
