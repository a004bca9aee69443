using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

/// <summary>Reads .npy and .npz files written by NumPy itself (tests/MediatorDiT.Tests/Data/npy, see the README there).</summary>
public class NpyVectorTests
{
    private static string PathOf(string name)
    {
        string path = Path.Combine(Fixtures.RepoRoot, "tests", "MediatorDiT.Tests", "Data", "npy", name);
        if (!File.Exists(path)) throw new FileNotFoundException($"NumPy test vector {path} is missing.");
        return path;
    }

    private static readonly float[] Latents = Enumerable.Range(0, 6).Select(i => (i - 2.5f) / 4).ToArray();

    private static byte[] Images => Enumerable.Range(0, 2 * 3 * 4 * 3).Select(i => (byte)(i * 7 % 256)).ToArray();

    [Theory]
    [InlineData("latents_v1.npy")]
    [InlineData("latents_v2.npy")]
    [InlineData("latents_v3.npy")]
    public void ReadsEveryHeaderVersion(string name)
    {
        StoredTensor array = NpyFormat.Read(PathOf(name));

        Assert.Equal(DType.F32, array.DType);
        Assert.Equal(new[] { 3, 2 }, array.Shape);
        Assert.Equal(Latents, array.ToFloat().Span.ToArray());
    }

    [Fact]
    public void WritesTheSameBytesAsNumpy()
    {
        var latents = StoredTensor.FromFloat(Latents, [3, 2]);
        using var written = new MemoryStream();

        NpyFormat.Write(written, latents);

        Assert.Equal(File.ReadAllBytes(PathOf("latents_v1.npy")), written.ToArray());
    }

    [Fact]
    public void ReadsScalarsAndBooleans()
    {
        StoredTensor scalar = NpyFormat.Read(PathOf("scalar.npy"));
        Assert.Empty(scalar.Shape);
        Assert.Equal(DType.F64, scalar.DType);
        Assert.Equal(2.5f, scalar.ToFloat().Span[0]);

        Assert.Equal(new long[] { 1, 0, 1 }, NpyFormat.Read(PathOf("bool.npy")).ToInt64());
    }

    [Theory]
    [InlineData("fortran.npy", "Fortran")]
    [InlineData("bigendian.npy", "big-endian")]
    [InlineData("object.npy", "Python objects")]
    public void RejectsWhatItCannotHold(string name, string words)
    {
        var error = Assert.Throws<MediatorDiTException>(() => NpyFormat.Read(PathOf(name)));
        Assert.Contains(name, error.Message);
        Assert.Contains(words, error.Message);
    }

    [Fact]
    public void ReadsSavez()
    {
        using var npz = new NpzReader(PathOf("savez.npz"));

        Assert.Equal(new[] { "latents", "mu", "labels", "arr_0" }, npz.Names);
        StoredTensor images = npz.Read("arr_0");
        Assert.Equal(DType.U8, images.DType);
        Assert.Equal(new[] { 2, 3, 4, 3 }, images.Shape);
        Assert.Equal(Images, images.Bytes.ToArray());
        Assert.Equal(Latents, npz.Read("latents").ToFloat().Span.ToArray());
        StoredTensor mu = npz.Read("mu");
        Assert.Equal(DType.F64, mu.DType);
        Assert.Equal(1e300, BitConverter.ToDouble(mu.Bytes.Span[16..]));
        Assert.Equal(new long[] { 0, 7, -1, 1L << 40 }, npz.Read("labels").ToInt64());
    }

    [Fact]
    public void ReadsSavezCompressed()
    {
        using var npz = new NpzReader(PathOf("savez_compressed.npz"));

        Assert.Equal(Images, npz.Read("arr_0").Bytes.ToArray());
        Assert.Equal(new[] { 2, 3 }, npz.GetHeader("latents").Shape);
        Assert.Equal(Latents, npz.Read("latents").ToFloat().Span.ToArray());
    }
}
