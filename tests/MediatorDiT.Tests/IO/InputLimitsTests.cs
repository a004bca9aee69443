using System.IO.Compression;
using MediatorDiT.Data;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// Decompression bombs and unbounded inputs: images and arrays whose headers declare more than the
/// limits are refused from the header, before anything is inflated, and labels are bounded.
/// </summary>
public sealed class InputLimitsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Grouped(long value) => value.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void APngDeclaring40000Squared_IsRefusedFromItsHeaderWithoutAllocatingTheImage()
    {
        string path = _dir.File("huge.png");
        File.WriteAllBytes(path, HostileFiles.OversizedGreyPng(40_000, 40_000));
        Assert.True(new FileInfo(path).Length < 64 << 10);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<MediatorDiTException>(() => PngDecoder.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal($"{path}: declares 40,000 x 40,000 = 1,600,000,000 pixels, more than the limit of {Grouped(InputLimits.DefaultMaxImagePixels)} " +
                     $"(raise it with --max-image-pixels or MDIT_MAX_IMAGE_PIXELS if the image is genuine).", error.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes were allocated to refuse the file");
    }

    [Fact]
    public void ThePixelLimitComesFromTheOptions()
    {
        var pixels = Enumerable.Range(0, 8 * 8 * 3).Select(i => (byte)i).ToArray();
        byte[] png = PngEncoder.Encode(pixels, 8, 8, 3);

        var error = Assert.Throws<MediatorDiTException>(() => PngDecoder.Decode(png, "small.png", new InputLimits { MaxImagePixels = 63 }));
        Assert.Equal("small.png: declares 8 x 8 = 64 pixels, more than the limit of 63 (raise it with --max-image-pixels or MDIT_MAX_IMAGE_PIXELS if the image is genuine).", error.Message);
        Assert.Equal(pixels, PngDecoder.Decode(png, "small.png", new InputLimits { MaxImagePixels = 64 }).Pixels);
    }

    [Fact]
    public void ImageDataInflatingFarPastTheHeader_StopsEarly()
    {
        // A 4 x 4 grey image (4 rows of a filter byte and 4 pixels) followed by 64 MiB more of zeros.
        var rows = new byte[4 * 5];
        byte[] idat = PngTestBuilder.Compress(rows.Concat(new byte[64 << 20]).ToArray());
        byte[] png = new PngTestBuilder().Header(4, 4, 8, 0).Chunk("IDAT", idat).End().ToArray();
        Assert.True(png.Length < 256 << 10);

        var error = Assert.Throws<MediatorDiTException>(() => PngDecoder.Decode(png, "surplus.png"));
        Assert.Equal("surplus.png: the image data inflates to over 65536 bytes more than the 4 x 4 image its header declares (the file is corrupt).", error.Message);

        // A little surplus (some encoders pad) is still tolerated, as libpng tolerates it.
        byte[] padded = new PngTestBuilder().Header(4, 4, 8, 0).ImageData(rows.Concat(new byte[100]).ToArray()).End().ToArray();
        Assert.Equal(new byte[16], PngDecoder.Decode(padded, "padded.png").Pixels);
    }

    [Fact]
    public void TheZeroImageBombHelperBuildsARealArchive()
    {
        string path = _dir.File("small-bomb.npz");
        File.WriteAllBytes(path, HostileFiles.ZeroImageBombNpz(2048));
        using var npz = new NpzReader(path);
        StoredTensor images = npz.Read("arr_0"); // inflated to the end: the deflate data and the CRC are valid
        Assert.Equal(new[] { 2048, 32, 32 }, images.Shape);
        Assert.DoesNotContain(images.Bytes.ToArray(), b => b != 0);
    }

    [Fact]
    public void AnNpzBombOf1Point2MillionZeroImages_IsRefusedBeforeItIsInflated()
    {
        const int count = 1_228_800;
        string path = _dir.File("bomb.npz");
        File.WriteAllBytes(path, HostileFiles.ZeroImageBombNpz(count));
        Assert.True(new FileInfo(path).Length < 2 << 20);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<MediatorDiTException>(() => SampleFiles.Load(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal($"{path}: declares array 'arr_0' as |u1 ({count}, 32, 32) with {Grouped(count * 1024L)} elements, more than the limit of " +
                     $"{Grouped(InputLimits.DefaultMaxArrayElements)} (raise it with --max-array-elements or MDIT_MAX_ARRAY_ELEMENTS if the file is genuine).", error.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes were allocated to refuse the file");
    }

    [Fact]
    public void TheArrayLimitComesFromTheOptions()
    {
        string npzPath = _dir.File("five.npz");
        using (var writer = new NpzWriter(npzPath))
        {
            writer.WriteArray("arr_0", new StoredTensor(DType.U8, [5, 4, 4], new byte[80]));
            writer.Complete();
        }
        using (var npz = new NpzReader(npzPath, new InputLimits { MaxArrayElements = 79 }))
        {
            var error = Assert.Throws<MediatorDiTException>(() => npz.Read("arr_0"));
            Assert.Equal($"{npzPath}: declares array 'arr_0' as |u1 (5, 4, 4) with 80 elements, more than the limit of 79 " +
                         "(raise it with --max-array-elements or MDIT_MAX_ARRAY_ELEMENTS if the file is genuine).", error.Message);
        }
        using (var npz = new NpzReader(npzPath, new InputLimits { MaxArrayElements = 80 }))
            Assert.Equal(80, npz.Read("arr_0").ElementCount);

        string npyPath = _dir.File("five.npy");
        NpyFormat.Write(npyPath, new StoredTensor(DType.U8, [5, 4, 4], new byte[80]));
        var npyError = Assert.Throws<MediatorDiTException>(() => NpyFormat.Read(npyPath, new InputLimits { MaxArrayElements = 79 }));
        Assert.StartsWith($"{npyPath}: declares an array |u1 (5, 4, 4) with 80 elements, more than the limit of 79 ", npyError.Message);
    }

    [Fact]
    public void AnNpyFileShorterThanItsHeaderDeclares_IsRefusedBeforeTheDataIsAllocated()
    {
        string path = _dir.File("short.npy");
        File.WriteAllBytes(path, [.. NpyFormat.Header(DType.F32, [1000, 1000]), .. new byte[12]]);
        var error = Assert.Throws<MediatorDiTException>(() => NpyFormat.Read(path));
        Assert.Equal($"{path}: the array <f4 (1000, 1000) needs 4000000 data bytes, but only 12 follow its header (the file is truncated).", error.Message);
    }

    [Fact]
    public void AnNpzEntryHoldingMoreThanItsHeaderDeclares_IsRefused()
    {
        // The header says 2 bytes of data, the entry holds 10: reading stopped after 2 before.
        byte[] entry = [.. NpyFormat.Header(DType.U8, [2]), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        string path = _dir.File("longer.npz");
        using (var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create))
        using (Stream stream = zip.CreateEntry("arr_0.npy").Open())
            stream.Write(entry);

        using var npz = new NpzReader(path);
        var error = Assert.Throws<MediatorDiTException>(() => npz.Read("arr_0"));
        Assert.Equal($"{path} (array 'arr_0'): the .npy header declares |u1 (2) (2 data bytes after a {entry.Length - 10}-byte header), " +
                     $"but the zip directory gives the entry {entry.Length} bytes (the file is corrupt).", error.Message);
    }

    [Fact]
    public void AnNpzEntryInflatingPastItsDeclaredSize_IsReadOnlyToThatSize()
    {
        // The directory (and the .npy header) say 16 data bytes; the deflate data holds 16 MiB more, never inflated.
        byte[] header = NpyFormat.Header(DType.U8, [16]);
        byte[] declared = [.. header, .. Enumerable.Range(1, 16).Select(i => (byte)i)];
        byte[] data = HostileFiles.DeflatedZeros(declared, 16);
        string path = _dir.File("overflowing.npz");
        File.WriteAllBytes(path, HostileFiles.SingleEntryZip("arr_0.npy", data, Crc32.Compute(declared), (uint)declared.Length));

        using var npz = new NpzReader(path);
        Assert.Equal(Enumerable.Range(1, 16).Select(i => (byte)i).ToArray(), npz.Read("arr_0").Bytes.ToArray());
    }

    private string LatentsNpz(string name, long[] labels)
    {
        string path = _dir.File(name);
        using var writer = new NpzWriter(path);
        writer.WriteArray(LatentDataset.LatentsKey, StoredTensor.FromFloat(new float[labels.Length * 4], [labels.Length, 1, 2, 2]));
        writer.WriteArray(LatentDataset.LabelsKey, StoredTensor.FromInt64(labels, [labels.Length]));
        writer.Complete();
        return path;
    }

    [Fact]
    public void LatentLabelsOf100Million_AreRefusedInsteadOfSizingTheLabelTable()
    {
        string path = LatentsNpz("labels.npz", [0, 100_000_000, 2]);
        var error = Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(path));
        Assert.Equal($"{path}: label 1 is 100000000, but without num_classes in the file at most 100,000 classes (labels 0..99999) are accepted.", error.Message);

        // The largest label the default maximum allows still sets the class count, and the maximum is an option.
        Assert.Equal(100_000, LatentDataset.Load(LatentsNpz("largest.npz", [0, 99_999])).NumClasses);
        Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(LatentsNpz("tight.npz", [0, 10]), limits: new InputLimits { MaxClasses = 10 }));

        string safetensors = _dir.File("labels.safetensors");
        SafeTensors.Write(safetensors, new Dictionary<string, StoredTensor>
        {
            [LatentDataset.LatentsKey] = StoredTensor.FromFloat(new float[4], [1, 1, 2, 2]),
            [LatentDataset.LabelsKey] = StoredTensor.FromInt64([0], [1]),
        }, new Dictionary<string, string> { ["num_classes"] = "100000000" });
        var metadataError = Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(safetensors));
        Assert.Equal($"{safetensors}: the metadata entry num_classes is 100000000, more than the 100,000 classes accepted.", metadataError.Message);
    }

    private string SamplesNpz(string name, long[] labels)
    {
        string path = _dir.File(name);
        using var writer = new NpzWriter(path);
        writer.WriteArray("arr_0", new StoredTensor(DType.U8, [labels.Length, 4, 4], new byte[labels.Length * 16]));
        writer.WriteArray("arr_1", StoredTensor.FromInt64(labels, [labels.Length]));
        writer.Complete();
        return path;
    }

    [Fact]
    public void SampleLabelsAreBoundedByTheClassMaximumAndTheClassifiersClasses()
    {
        string huge = SamplesNpz("huge-labels.npz", [1, 100_000_000]);
        var error = Assert.Throws<MediatorDiTException>(() => SampleFiles.Load(huge));
        Assert.Equal($"{huge}: 'arr_1' gives image 1 the label 100000000, but labels are class indices 0..99999.", error.Message);

        // 5e9 overflowed a checked int conversion before (an OverflowException trace).
        string overflowing = SamplesNpz("overflowing-labels.npz", [5_000_000_000, 1]);
        var overflow = Assert.Throws<MediatorDiTException>(() => SampleFiles.Load(overflowing));
        Assert.Equal($"{overflowing}: 'arr_1' gives image 0 the label 5000000000, but labels are class indices 0..99999.", overflow.Message);

        string outside = SamplesNpz("twelve.npz", [3, 12]);
        SampleSet set = SampleFiles.Load(outside);
        Assert.Equal([3, 12], set.Labels!);
        var classes = Assert.Throws<MediatorDiTException>(() => set.CheckLabels(10));
        Assert.Equal($"{outside}: 'arr_1' gives image 1 the label 12, but the classifier knows 10 classes (labels 0..9).", classes.Message);
        set.CheckLabels(13);
    }

    [Fact]
    public void AnOversizedPngInAnImageFolder_IsSkippedWithAWarning()
    {
        string cls = Path.Combine(_dir.Path, "folder", "a");
        Directory.CreateDirectory(cls);
        File.WriteAllBytes(Path.Combine(cls, "0.png"), PngEncoder.Encode(new byte[8 * 8 * 3], 8, 8, 3));
        string huge = Path.Combine(cls, "1.png");
        File.WriteAllBytes(huge, HostileFiles.OversizedGreyPng(40_000, 40_000));
        var messages = new List<string>();

        var dataset = ImageFolderDataset.Load(Path.Combine(_dir.Path, "folder"), 8, new SynchronousProgress(messages));

        Assert.Equal(1, dataset.Count);
        Assert.Equal([huge], dataset.SkippedFileNames);
        Assert.Contains($"warning: skipped {huge}, it is not a readable image ({huge}: declares 40,000 x 40,000 = 1,600,000,000 pixels, more than the limit of " +
                        $"{Grouped(InputLimits.DefaultMaxImagePixels)} (raise it with --max-image-pixels or MDIT_MAX_IMAGE_PIXELS if the image is genuine))", messages);
    }

    [Fact]
    public void AnOversizedJpegInAnImageFolder_IsSkippedWithAWarning()
    {
        string cls = Path.Combine(_dir.Path, "jpegs", "n01440764");
        Directory.CreateDirectory(cls);
        byte[] small = SkiaTestImages.Jpeg(new byte[8 * 8 * 3], 8, 8, 3);
        File.WriteAllBytes(Path.Combine(cls, "0.JPEG"), small);
        string huge = Path.Combine(cls, "1.JPEG");
        File.WriteAllBytes(huge, SkiaTestImages.WithJpegSize(small, 40_000, 40_000));
        var messages = new List<string>();

        var dataset = ImageFolderDataset.Load(Path.Combine(_dir.Path, "jpegs"), 8, new SynchronousProgress(messages));

        Assert.Equal(1, dataset.Count);
        Assert.Equal([huge], dataset.SkippedFileNames);
        Assert.Contains($"warning: skipped {huge}, it is not a readable image ({huge}: declares 40,000 x 40,000 = 1,600,000,000 pixels, more than the limit of " +
                        $"{Grouped(InputLimits.DefaultMaxImagePixels)} (raise it with --max-image-pixels or MDIT_MAX_IMAGE_PIXELS if the image is genuine))", messages);
    }

    [Fact]
    public void AModelConfigTooWideOrDeepForItsWeights_IsRefusedBeforeTheNetworkIsAllocated()
    {
        var config = new ModelConfig { InputSize = 4, PatchSize = 2, InChannels = 1, HiddenSize = 8, Depth = 1, NumHeads = 2, NumClasses = 3, LearnSigma = false, MediatorNum = 1 };
        var state = StateDict.FromParameters(new SiTModel(config));
        string path = _dir.File("wide.safetensors");
        SafeTensors.Write(path, state, new Dictionary<string, string> { [ModelFiles.ConfigMetadataKey] = (config with { HiddenSize = 8_000 }).ToJson() });

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<MediatorDiTException>(() => ModelFiles.Load(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal($"{path}: the config (hidden_size 8000, in_channels 1 and patch_size 2) does not fit 'x_embedder.proj.weight', which has shape [8, 1, 2, 2], " +
                     "so it does not describe these weights.", error.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes were allocated to refuse the file");

        string deep = _dir.File("deep.safetensors");
        SafeTensors.Write(deep, state, new Dictionary<string, string> { [ModelFiles.ConfigMetadataKey] = (config with { Depth = 1_000 }).ToJson() });
        Assert.Equal($"{deep}: the config (depth 1000) does not fit the weights, which hold 1 blocks, so it does not describe these weights.",
            Assert.Throws<MediatorDiTException>(() => ModelFiles.Load(deep)).Message);

        // Wider than any config may be: refused by the config's own limits, naming the field.
        string absurd = _dir.File("absurd.safetensors");
        SafeTensors.Write(absurd, state, new Dictionary<string, string> { [ModelFiles.ConfigMetadataKey] = (config with { HiddenSize = 40_000 }).ToJson() });
        Assert.Contains("hidden_size must be at most 16384, got 40000", Assert.Throws<MediatorDiTException>(() => ModelFiles.Load(absurd)).Message);
    }

    [Fact]
    public void ATorchEntryClaimingMoreThanDeflateCanProduce_IsRefusedBeforeItIsAllocated()
    {
        byte[] pickle = PngTestBuilder.Compress([0x80, 0x02, (byte)'}', (byte)'.'])[2..^4]; // raw deflate of an empty-dict pickle
        string path = _dir.File("claims.pt");
        File.WriteAllBytes(path, HostileFiles.SingleEntryZip("archive/data.pkl", pickle, 0, 2_000_000_000));

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<MediatorDiTException>(() => TorchFile.Load(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal($"{path}: entry 'archive/data.pkl' claims 2000000000 bytes from {pickle.Length} compressed ones, more than deflate can produce; the file is damaged.", error.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes were allocated to refuse the file");
    }

    private sealed class SynchronousProgress(List<string> messages) : IProgress<string>
    {
        public void Report(string value)
        {
            lock (messages) messages.Add(value);
        }
    }
}
