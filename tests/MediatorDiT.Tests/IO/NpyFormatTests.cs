using System.Text;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

public sealed class NpyFormatTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Magic, version 1.0, header length 118 (0x76), the dict, spaces, '\n': 128 bytes as numpy writes it.</summary>
    private static byte[] NumpyHeader128(string dict)
    {
        byte[] prefix = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 118, 0];
        return [.. prefix, .. Encoding.Latin1.GetBytes(dict.PadRight(117) + "\n")];
    }

    [Fact]
    public void HeaderBytesAreExactlyNumpys()
    {
        // numpy pads the dict with 21 - len(str(shape[0])) spaces, then to a 64-byte boundary.
        byte[] header = NpyFormat.Header(DType.U8, [2, 4, 4, 3]);

        Assert.Equal(128, header.Length);
        Assert.Equal(NumpyHeader128("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4, 4, 3), }"), header);
    }

    [Theory]
    [InlineData(DType.U8, new[] { 50000, 256, 256, 3 }, "{'descr': '|u1', 'fortran_order': False, 'shape': (50000, 256, 256, 3), }")]
    [InlineData(DType.F32, new int[0], "{'descr': '<f4', 'fortran_order': False, 'shape': (), }")]
    [InlineData(DType.I64, new[] { 7 }, "{'descr': '<i8', 'fortran_order': False, 'shape': (7,), }")]
    [InlineData(DType.F64, new[] { 1 }, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }")]
    [InlineData(DType.U8, new[] { 0, 4 }, "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 4), }")]
    public void HeadersOfOtherShapes(DType dtype, int[] shape, string dict) =>
        Assert.Equal(NumpyHeader128(dict), NpyFormat.Header(dtype, shape));

    [Fact]
    public void DataStartsOn64ByteBoundaries()
    {
        for (int rank = 0; rank < 32; rank++)
        {
            int[] shape = Enumerable.Range(0, rank).Select(i => i * 997 + 1).ToArray();
            byte[] header = NpyFormat.Header(DType.F32, shape);
            Assert.Equal(0, header.Length % 64);
            Assert.Equal((byte)'\n', header[^1]);
        }
    }

    [Fact]
    public void HugeHeadersSwitchToVersion2()
    {
        int[] shape = Enumerable.Repeat(1, 25_000).ToArray();
        byte[] header = NpyFormat.Header(DType.U8, shape);

        Assert.Equal(2, header[6]);
        Assert.Equal(0, header.Length % 64);
        NpyHeader parsed = NpyFormat.ReadHeader(new MemoryStream([.. header, 42]), "v2");
        Assert.Equal(25_000, parsed.Shape.Length);
        Assert.Equal(header.Length, parsed.DataOffset);
    }

    public static IEnumerable<object[]> DTypesWithNumpyNames =>
        DTypes.All.Where(d => d != DType.BF16).Select(d => new object[] { d });

    [Theory]
    [MemberData(nameof(DTypesWithNumpyNames))]
    public void RoundTripsEveryDType(DType dtype)
    {
        int[] shape = [3, 2];
        byte[] bytes = Enumerable.Range(0, 6 * dtype.ElementSize()).Select(i => (byte)(i * 29 + 1)).ToArray();
        if (dtype == DType.Bool) bytes = [1, 0, 1, 1, 0, 0];
        string path = _dir.File("a.npy");

        NpyFormat.Write(path, new StoredTensor(dtype, shape, bytes));
        StoredTensor back = NpyFormat.Read(path);

        Assert.Equal(dtype, back.DType);
        Assert.Equal(shape, back.Shape);
        Assert.Equal(bytes, back.Bytes.ToArray());
    }

    [Fact]
    public void Bfloat16HasNoNumpyName() =>
        Assert.Throws<MediatorDiTException>(() => NpyFormat.Header(DType.BF16, [1]));

    private static MediatorDiTException HeaderFails(string dict, string words)
    {
        byte[] text = Encoding.Latin1.GetBytes(dict + "\n");
        byte[] file = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)text.Length, 0, .. text, 0, 0, 0, 0];
        var error = Assert.Throws<MediatorDiTException>(() => NpyFormat.Read(new MemoryStream(file), "x.npy"));
        Assert.StartsWith("x.npy: ", error.Message);
        Assert.Contains(words, error.Message);
        return error;
    }

    [Fact]
    public void RejectsFortranOrder() =>
        HeaderFails("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", "Fortran");

    [Fact]
    public void FortranOrderOfAVectorIsTheSameAsCOrder()
    {
        byte[] text = Encoding.Latin1.GetBytes("{'descr': '|u1', 'fortran_order': True, 'shape': (3,), }\n");
        byte[] file = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)text.Length, 0, .. text, 5, 6, 7];
        Assert.Equal(new byte[] { 5, 6, 7 }, NpyFormat.Read(new MemoryStream(file), "v").Bytes.ToArray());
    }

    [Fact]
    public void RejectsObjectArrays() =>
        HeaderFails("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "Python objects");

    [Fact]
    public void RejectsStructuredArrays() =>
        HeaderFails("{'descr': [('a', '<f4'), ('b', '<i8')], 'fortran_order': False, 'shape': (2,), }", "structured");

    [Fact]
    public void RejectsBigEndian() =>
        HeaderFails("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "big-endian");

    [Fact]
    public void RejectsStrings() =>
        HeaderFails("{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", "'<U5'");

    [Fact]
    public void RejectsMissingKeys() =>
        HeaderFails("{'descr': '<f4', 'shape': (1,), }", "lacks");

    [Fact]
    public void RejectsGarbageHeaders() =>
        HeaderFails("{'descr': '<f4', 'fortran_order': False, 'shape': (1,, }", "header");

    [Fact]
    public void AcceptsPython2Longs()
    {
        byte[] text = Encoding.Latin1.GetBytes("{'descr': '<i2', 'fortran_order': False, 'shape': (1L, 2L)}\n");
        byte[] file = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)text.Length, 0, .. text, 1, 0, 255, 255];
        StoredTensor array = NpyFormat.Read(new MemoryStream(file), "py2");
        Assert.Equal(new[] { 1, 2 }, array.Shape);
        Assert.Equal(new long[] { 1, -1 }, array.ToInt64());
    }

    [Fact]
    public void BadMagic()
    {
        string path = _dir.File("bad.npy");
        File.WriteAllText(path, "PK\u0003\u0004 this is a zip");
        var error = Assert.Throws<MediatorDiTException>(() => NpyFormat.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("magic", error.Message);
    }

    [Fact]
    public void UnsupportedVersion()
    {
        byte[] file = [.. NpyFormat.Header(DType.U8, [1]), 9];
        file[6] = 4;
        var error = Assert.Throws<MediatorDiTException>(() => NpyFormat.Read(new MemoryStream(file), "v4.npy"));
        Assert.Contains("version 4.0", error.Message);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(9)]
    [InlineData(100)]
    [InlineData(130)]
    public void TruncatedFiles(int keep)
    {
        byte[] file = [.. NpyFormat.Header(DType.F32, [2, 2]), .. new byte[16]];
        string path = _dir.File("cut.npy");
        File.WriteAllBytes(path, file[..keep]);
        var error = Assert.Throws<MediatorDiTException>(() => NpyFormat.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("truncated", error.Message);
    }
}
