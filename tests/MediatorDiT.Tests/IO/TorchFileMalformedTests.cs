using System.Buffers.Binary;
using System.IO.Compression;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

public class TorchFileMalformedTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static MediatorDiTException LoadFails(string path, params string[] fragments)
    {
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.LoadStateDict(path));
        Assert.Contains(Path.GetFileName(path), error.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, error.Message);
        // The format-detecting entry point sends zip and legacy files to the same reader.
        Assert.Equal(error.Message, Assert.Throws<MediatorDiTException>(() => StateDict.Load(path)).Message);
        return error;
    }

    [Fact]
    public void TruncatedZip()
    {
        string path = _dir.CopyFixture("mediator_grid4_m4.checkpoint.pt", "cut.pt");
        using (var stream = new FileStream(path, FileMode.Open)) stream.SetLength(stream.Length / 2);
        LoadFails(path, "zip", "truncated");
    }

    [Fact]
    public void CorruptedPickleBytesFailTheChecksum()
    {
        string path = _dir.CopyFixture("dit_model.pt", "corrupt.pt");
        byte[] bytes = File.ReadAllBytes(path);
        // The first local header is data.pkl's; its payload follows the 30-byte header, name and extra field.
        Assert.Equal(0x04034B50u, BinaryPrimitives.ReadUInt32LittleEndian(bytes));
        int payload = 30 + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(26)) + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(28));
        bytes.AsSpan(payload + 200, 16).Fill(0xFE);
        File.WriteAllBytes(path, bytes);
        LoadFails(path, "data.pkl", "CRC-32");
    }

    [Fact]
    public void CorruptedStorageBytesFailTheChecksum()
    {
        string path = _dir.CopyFixture("dit_model.pt", "corrupt-storage.pt");
        byte[] bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0xFF; // storages fill almost all of the file
        File.WriteAllBytes(path, bytes);
        LoadFails(path, "CRC-32");
    }

    [Fact]
    public void GarbagePickleWithAValidChecksumNamesTheOpcode()
    {
        byte[] pickle = [0x80, 0x02, 0x7D, 0xFF, 0x2E]; // PROTO 2, EMPTY_DICT, (no such opcode), STOP
        string path = _dir.File("garbage.pt");
        TorchZipWriter.Write(path, pickle, new Dictionary<string, byte[]>());
        LoadFails(path, "0xFF", "byte 3", "archive/data.pkl");
    }

    [Fact]
    public void ZipWithoutAStorageEntry()
    {
        string path = _dir.CopyFixture("dit_model.pt", "missing-storage.pt");
        using (var zip = new ZipArchive(new FileStream(path, FileMode.Open), ZipArchiveMode.Update))
            zip.GetEntry("dit_model/data/5")!.Delete();
        LoadFails(path, "'data/5'", "missing");
    }

    [Fact]
    public void ZipWithoutDataPkl()
    {
        string path = _dir.File("plain.zip.pt");
        using (var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create))
        using (var writer = new StreamWriter(zip.CreateEntry("notes/readme.txt").Open()))
            writer.Write("hello");
        LoadFails(path, "data.pkl");
    }

    [Fact]
    public void LegacyPickleFormat()
    {
        // torch.save(..., _use_new_zipfile_serialization=False) starts with PROTO 2 and a LONG1 magic number.
        string path = _dir.File("legacy.pt");
        File.WriteAllBytes(path, Convert.FromHexString("80028a0a6cfc9c46f9206aa850197d71002e"));
        LoadFails(path, "legacy", "re-save");
    }

    [Fact]
    public void NotATorchFileAtAll()
    {
        string path = _dir.File("notes.pt");
        File.WriteAllText(path, "these are not weights");
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.Load(path));
        Assert.Contains("notes.pt", error.Message);
        Assert.Contains("not a PyTorch zip checkpoint", error.Message);
    }

    [Fact]
    public void MissingFile()
    {
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.Load(_dir.File("absent.pt")));
        Assert.Contains("absent.pt", error.Message);
        Assert.Contains("does not exist", error.Message);
    }
}
