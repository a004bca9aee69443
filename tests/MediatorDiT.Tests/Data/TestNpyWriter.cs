using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace MediatorDiT.Tests.Data;

/// <summary>Writes .npy (format 1.0) and .npz files as numpy does, for the latent-dataset tests.</summary>
public static class TestNpyWriter
{
    public static byte[] Float32(float[] values, params int[] shape)
    {
        var data = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * i), values[i]);
        return Npy("<f4", shape, data);
    }

    public static byte[] Int64(long[] values)
    {
        var data = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(8 * i), values[i]);
        return Npy("<i8", [values.Length], data);
    }

    public static void WriteNpz(string path, params (string Name, byte[] Npy)[] arrays)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, npy) in arrays)
        {
            using Stream entry = zip.CreateEntry(name + ".npy").Open();
            entry.Write(npy);
        }
    }

    private static byte[] Npy(string descr, int[] shape, byte[] data)
    {
        string tuple = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}";
        int total = (10 + dict.Length + 1 + 63) / 64 * 64;
        string header = dict.PadRight(total - 10 - 1) + "\n";
        var output = new MemoryStream();
        output.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        Span<byte> length = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)header.Length);
        output.Write(length);
        output.Write(Encoding.ASCII.GetBytes(header));
        output.Write(data);
        return output.ToArray();
    }
}
