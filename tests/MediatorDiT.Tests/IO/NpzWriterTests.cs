using System.IO.Compression;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

public sealed class NpzWriterTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static byte[] Image(int index, int size) =>
        Enumerable.Range(0, size).Select(i => (byte)(i * 31 + index * 7)).ToArray();

    [Fact]
    public void StreamsImagesOneByOne()
    {
        const int count = 500, h = 8, w = 8, c = 3;
        string path = _dir.File("samples.npz");

        using (var npz = new NpzWriter(path))
        {
            NpyArrayWriter images = npz.BeginArray("arr_0", DType.U8, count, h, w, c);
            for (int i = 0; i < count; i++)
            {
                images.Write(Image(i, h * w * c));
                Assert.False(File.Exists(path)); // nothing appears before Complete
            }
            Assert.True(images.IsComplete);
            npz.Complete();
        }

        using var reader = new NpzReader(path);
        Assert.Equal(new[] { "arr_0" }, reader.Names);
        StoredTensor all = reader.Read("arr_0");
        Assert.Equal(new[] { count, h, w, c }, all.Shape);
        for (int i = 0; i < count; i += 97)
            Assert.Equal(Image(i, h * w * c), all.Bytes.Slice(i * h * w * c, h * w * c).ToArray());
        Assert.Equal(["samples.npz"], Directory.GetFiles(_dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void EntriesAreStoredUncompressedWithNumpysHeader()
    {
        string path = _dir.File("a.npz");
        using (var npz = new NpzWriter(path))
        {
            npz.BeginArray("arr_0", DType.U8, 2, 4, 4, 3).Write(new byte[96]);
            npz.Complete();
        }

        using ZipArchive zip = ZipFile.OpenRead(path);
        ZipArchiveEntry entry = Assert.Single(zip.Entries);
        Assert.Equal("arr_0.npy", entry.FullName);
        Assert.Equal(128 + 96, entry.Length);
        Assert.Equal(entry.Length, entry.CompressedLength);
        using Stream data = entry.Open();
        var header = new byte[128];
        data.ReadExactly(header);
        Assert.Equal(NpyFormat.Header(DType.U8, [2, 4, 4, 3]), header);
    }

    [Fact]
    public void SeveralArraysOfEveryWritableType()
    {
        string path = _dir.File("many.npz");
        using (var npz = new NpzWriter(path))
        {
            npz.BeginArray("latents", DType.F32, 2, 2).Write([1.5f, -2f, 0f, 3.25f]);
            NpyArrayWriter mu = npz.BeginArray("mu", DType.F64, 3);
            mu.Write([0.1, 0.2]);
            mu.Write([1e300]);
            npz.BeginArray("labels", DType.I64, 2).Write([7L, -9L]);
            npz.WriteArray("flags", new StoredTensor(DType.Bool, [2], new byte[] { 1, 0 }));
            npz.BeginArray("empty", DType.F32, 0, 4);
            npz.Complete();
        }

        using var reader = new NpzReader(path);
        Assert.Equal(new[] { "latents", "mu", "labels", "flags", "empty" }, reader.Names);
        Assert.Equal(new[] { 1.5f, -2f, 0f, 3.25f }, reader.Read("latents").ToFloat().Span.ToArray());
        Assert.Equal(new long[] { 7, -9 }, reader.Read("labels").ToInt64());
        Assert.Equal(1e300, BitConverter.ToDouble(reader.Read("mu").Bytes.Span[16..]));
        Assert.Equal(new long[] { 1, 0 }, reader.Read("flags").ToInt64());
        Assert.Equal(new[] { 0, 4 }, reader.Read("empty").Shape);
    }

    [Fact]
    public void ShortArrayFailsOnCompleteAndLeavesNoFile()
    {
        string path = _dir.File("short.npz");
        File.WriteAllText(path, "previous run");

        using (var npz = new NpzWriter(path))
        {
            NpyArrayWriter images = npz.BeginArray("arr_0", DType.U8, 3, 2, 2, 3);
            images.Write(new byte[12]);
            images.Write(new byte[12]);
            var error = Assert.Throws<MediatorDiTException>(npz.Complete);
            Assert.Contains(path, error.Message);
            Assert.Contains("arr_0", error.Message);
            Assert.Contains("24 of its 36", error.Message);
        }

        Assert.Equal("previous run", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_dir.Path));
    }

    [Fact]
    public void WritingPastTheShapeFails()
    {
        string path = _dir.File("long.npz");
        using var npz = new NpzWriter(path);
        NpyArrayWriter images = npz.BeginArray("arr_0", DType.U8, 2, 4);
        images.Write(new byte[4]);

        var error = Assert.Throws<MediatorDiTException>(() => images.Write(new byte[5]));

        Assert.Contains(path, error.Message);
        Assert.Equal(4, images.ElementsWritten);
    }

    [Fact]
    public void DisposingWithoutCompletingLeavesNoFile()
    {
        string path = _dir.File("abandoned.npz");
        using (var npz = new NpzWriter(path))
            npz.BeginArray("arr_0", DType.U8, 1).Write([1]);

        Assert.Empty(Directory.GetFiles(_dir.Path));
    }

    [Fact]
    public void NextArrayNeedsThePreviousOneComplete()
    {
        using var npz = new NpzWriter(_dir.File("x.npz"));
        npz.BeginArray("a", DType.F32, 2).Write([1f]);
        Assert.Throws<MediatorDiTException>(() => npz.BeginArray("b", DType.F32, 1));
    }

    [Fact]
    public void MisuseIsReported()
    {
        using var npz = new NpzWriter(_dir.File("x.npz"));
        NpyArrayWriter a = npz.BeginArray("a", DType.U8, 4);
        Assert.Throws<MediatorDiTException>(() => a.Write([1f]));              // wrong element type
        Assert.Throws<MediatorDiTException>(() => npz.BeginArray("", DType.U8, 1));
        a.Write([1, 2, 3, 4]);
        npz.BeginArray("b", DType.I64, 1).WriteBytes(new byte[8]);
        Assert.Throws<MediatorDiTException>(() => a.Write([5]));               // closed
        Assert.Throws<MediatorDiTException>(() => npz.BeginArray("a", DType.U8, 1)); // duplicate
        Assert.Throws<MediatorDiTException>(() => npz.BeginArray("c", DType.I64, 2).WriteBytes(new byte[9]));
    }

    [Fact]
    public void WritesToAStream()
    {
        using var buffer = new MemoryStream();
        using (var npz = new NpzWriter(buffer, "in memory", leaveOpen: true))
        {
            npz.BeginArray("arr_0", DType.U8, 3).Write([1, 2, 3]);
            npz.Complete();
        }

        buffer.Position = 0;
        using var reader = new NpzReader(buffer, "in memory");
        Assert.Equal(new byte[] { 1, 2, 3 }, reader.Read("arr_0").Bytes.ToArray());
    }
}
