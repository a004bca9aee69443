using System.IO.Compression;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// An .npz entry past 4 GiB (21,846 images of 256 x 256 x 3, as a 50,000-sample run is) needs
/// ZIP64; the zip library adds it itself because entry sizes are not declared up front. Written
/// to a sparse in-memory stream so that the test needs neither 4 GB of disk nor of memory.
/// </summary>
public class NpzZip64Tests
{
    [Fact]
    public void EntryLargerThan4GiBRoundTrips()
    {
        const int count = 21_846, size = 256 * 256 * 3;
        long dataBytes = (long)count * size;
        Assert.True(dataBytes > uint.MaxValue);
        var sparse = new SparseMemoryStream();
        var image = new byte[size];

        using (var npz = new NpzWriter(sparse, "zip64.npz", leaveOpen: true))
        {
            NpyArrayWriter images = npz.BeginArray("arr_0", DType.U8, count, 256, 256, 3);
            for (int i = 0; i < count; i++)
            {
                // Mostly zeros; the first and last images carry a recognisable pattern.
                bool marked = i == 0 || i == count - 1;
                if (marked) image.AsSpan().Fill((byte)(i % 251 + 1));
                images.Write(image);
                if (marked) image.AsSpan().Clear();
            }
            npz.Complete();
        }
        Assert.True(sparse.StoredBytes < 64 << 20);

        sparse.Position = 0;
        using (var directory = new ZipArchive(sparse, ZipArchiveMode.Read, leaveOpen: true))
            Assert.Equal(128 + dataBytes, Assert.Single(directory.Entries).Length);

        sparse.Position = 0;
        using (var reader = new NpzReader(sparse, "zip64.npz", leaveOpen: true))
        {
            using NpyArrayReader array = reader.OpenArray("arr_0");
            Assert.Equal(new[] { count, 256, 256, 3 }, array.Header.Shape);
            array.ReadBytes(image);
            Assert.All(image, b => Assert.Equal(1, b));
        }

        // The last image, through the zip library's entry stream (reading all 4 GB through
        // NpyArrayReader, which also checks the CRC, works too but takes several seconds).
        sparse.Position = 0;
        using var zip = new ZipArchive(sparse, ZipArchiveMode.Read, leaveOpen: true);
        using Stream entry = zip.Entries[0].Open();
        var skip = new byte[1 << 22];
        for (long left = 128 + dataBytes - size; left > 0;)
            left -= entry.Read(skip, 0, (int)Math.Min(skip.Length, left));
        entry.ReadExactly(image);
        Assert.All(image, b => Assert.Equal((count - 1) % 251 + 1, b));
        Assert.Equal(0, entry.Read(skip, 0, 1));
    }
}
