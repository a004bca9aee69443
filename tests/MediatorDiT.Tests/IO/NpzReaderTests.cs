using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

public sealed class NpzReaderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string WriteImages(string name, int count, int size)
    {
        string path = _dir.File(name);
        using var npz = new NpzWriter(path);
        NpyArrayWriter images = npz.BeginArray("arr_0", DType.U8, count, size);
        for (int i = 0; i < count; i++)
            images.Write(Enumerable.Range(0, size).Select(p => (byte)(i + p)).ToArray());
        npz.Complete();
        return path;
    }

    [Fact]
    public void ReadsInParts()
    {
        string path = WriteImages("parts.npz", count: 10, size: 48);
        using var npz = new NpzReader(path);
        using NpyArrayReader reader = npz.OpenArray("arr_0");

        Assert.Equal(new[] { 10, 48 }, reader.Header.Shape);
        var batch = new byte[3 * 48];
        for (int start = 0; start < 9; start += 3)
        {
            reader.ReadBytes(batch);
            Assert.Equal((byte)(start + 1 + 5), batch[48 + 5]);
        }
        reader.ReadBytes(batch.AsSpan(0, 48));
        Assert.Equal(0, reader.ElementsRemaining);
        Assert.Throws<MediatorDiTException>(() => reader.ReadBytes(new byte[1]));
    }

    [Fact]
    public void ReadsFloatsInParts()
    {
        string path = _dir.File("f.npz");
        using (var writer = new NpzWriter(path))
        {
            writer.BeginArray("latents", DType.F32, 4).Write([1f, 2f, 3f, 4f]);
            writer.Complete();
        }
        using var npz = new NpzReader(path);
        using NpyArrayReader reader = npz.OpenArray("latents");
        var part = new float[2];
        reader.Read(part);
        reader.Read(part);
        Assert.Equal(new[] { 3f, 4f }, part);
    }

    [Fact]
    public void CorruptedDataFailsTheCrcCheck()
    {
        string path = WriteImages("bitrot.npz", count: 4, size: 64);
        byte[] bytes = File.ReadAllBytes(path);
        int header = bytes.AsSpan().IndexOf(NpyFormat.Magic);
        bytes[header + 128 + 100] ^= 0x10;
        File.WriteAllBytes(path, bytes);

        using var npz = new NpzReader(path);
        var error = Assert.Throws<MediatorDiTException>(() => npz.Read("arr_0"));
        Assert.Contains(path, error.Message);
        Assert.Contains("CRC", error.Message);
    }

    [Fact]
    public void MissingArrayNamesTheOthers()
    {
        string path = WriteImages("one.npz", 1, 1);
        using var npz = new NpzReader(path);
        var error = Assert.Throws<MediatorDiTException>(() => npz.Read("arr_1"));
        Assert.Contains("'arr_1'", error.Message);
        Assert.Contains("'arr_0'", error.Message);
    }

    [Fact]
    public void NotAZip()
    {
        string path = _dir.File("plain.npz");
        File.WriteAllBytes(path, NpyFormat.Header(DType.U8, [1]));
        var error = Assert.Throws<MediatorDiTException>(() => new NpzReader(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("zip", error.Message);
    }

    [Fact]
    public void TruncatedArchive()
    {
        string path = WriteImages("cut.npz", 4, 64);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 30)]);
        var error = Assert.Throws<MediatorDiTException>(() => { using var npz = new NpzReader(path); npz.Read("arr_0"); });
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void MissingFile()
    {
        var error = Assert.Throws<MediatorDiTException>(() => new NpzReader(_dir.File("absent.npz")));
        Assert.Contains("does not exist", error.Message);
    }
}
