using System.Buffers.Binary;
using System.Text;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Data;
using MediatorDiT.Models;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.IO;

/// <summary>
/// Seeded mutation fuzzing of the public loaders: valid small files (a PNG, JPEGs, WebPs, an .npz of samples, a model
/// safetensors with its config, a model config JSON, a torch.save .pt, a training checkpoint) get bit flips, byte and word
/// overwrites, truncation and big numbers written into their headers, and every failure must be a
/// <see cref="MediatorDiTException"/> with a one-sentence message. Fixed seeds and iteration counts make
/// every run the same; a failure names the seed and iteration that reproduce it.
/// </summary>
public sealed class LoadingFuzzTests : IDisposable
{
    private const int Iterations = 150;

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly string[] BigNumbers =
        ["2147483647", "2147483648", "4294967296", "9223372036854775807", "99999999999999999999999", "-1", "1e308", "100000000", "65536", "0", "40000"];

    /// <summary>One to three random mutations; names what was done, for the failure report.</summary>
    private static byte[] Mutate(byte[] original, Random rng, out string what)
    {
        var bytes = new List<byte>(original);
        var done = new List<string>();
        int count = rng.Next(1, 4);
        for (int m = 0; m < count && bytes.Count > 0; m++)
        {
            int at = rng.Next(bytes.Count);
            switch (rng.Next(6))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << rng.Next(8));
                    done.Add($"flip bit of byte {at}");
                    break;
                case 1:
                    byte value = rng.Next(3) switch { 0 => 0x00, 1 => 0xFF, _ => (byte)rng.Next(256) };
                    bytes[at] = value;
                    done.Add($"byte {at} = 0x{value:X2}");
                    break;
                case 2:
                    int length = rng.Next(bytes.Count);
                    bytes.RemoveRange(length, bytes.Count - length);
                    done.Add($"truncate to {length}");
                    break;
                case 3:
                {
                    // A 4- or 8-byte field (a length, a size, an offset) set to an extreme, either byte order.
                    uint word = rng.Next(4) switch { 0 => 0xFFFFFFFF, 1 => 0x7FFFFFFF, 2 => 0x80000000, _ => (uint)rng.Next() };
                    var field = new byte[rng.Next(2) == 0 ? 4 : 8];
                    if (rng.Next(2) == 0) BinaryPrimitives.WriteUInt32BigEndian(field, word);
                    else BinaryPrimitives.WriteUInt32LittleEndian(field, word);
                    for (int i = 0; i < field.Length && at + i < bytes.Count; i++) bytes[at + i] = field[i];
                    done.Add($"word at {at} = 0x{word:X8} ({field.Length} bytes)");
                    break;
                }
                case 4:
                {
                    // A run of digits (a JSON number, an .npy shape) replaced by a big number.
                    string big = BigNumbers[rng.Next(BigNumbers.Length)];
                    int start = FindDigitRun(bytes, at, out int end);
                    if (start < 0) goto case 5;
                    bytes.RemoveRange(start, end - start);
                    bytes.InsertRange(start, Encoding.ASCII.GetBytes(big));
                    done.Add($"number at {start} = {big}");
                    break;
                }
                case 5:
                {
                    string big = BigNumbers[rng.Next(BigNumbers.Length)];
                    bytes.InsertRange(at, Encoding.ASCII.GetBytes(big));
                    done.Add($"insert {big} at {at}");
                    break;
                }
            }
        }
        what = string.Join(", ", done);
        return [.. bytes];
    }

    /// <summary>The first run of ASCII digits at or after <paramref name="from"/> (wrapping around), or -1.</summary>
    private static int FindDigitRun(List<byte> bytes, int from, out int end)
    {
        for (int k = 0; k < bytes.Count; k++)
        {
            int i = (from + k) % bytes.Count;
            if (bytes[i] is < (byte)'0' or > (byte)'9') continue;
            while (i > 0 && bytes[i - 1] is >= (byte)'0' and <= (byte)'9') i--;
            end = i;
            while (end < bytes.Count && bytes[end] is >= (byte)'0' and <= (byte)'9') end++;
            return i;
        }
        end = -1;
        return -1;
    }

    /// <summary>
    /// Feeds <paramref name="iterations"/> mutations of <paramref name="original"/> (written to a file named
    /// <paramref name="fileName"/>) through <paramref name="load"/>; lists every failure that is not a
    /// one-sentence <see cref="MediatorDiTException"/>.
    /// </summary>
    private void Fuzz(string fileName, byte[] original, int seed, Action<string, byte[]> load, Func<byte[], byte[]>? repair = null, int iterations = Iterations)
    {
        load(WriteCase(fileName, original), original); // the unmutated file loads
        var rng = new Random(seed);
        var problems = new List<string>();
        for (int i = 0; i < iterations; i++)
        {
            byte[] mutated = Mutate(original, rng, out string what);
            if (repair is not null && rng.Next(2) == 0) mutated = repair(mutated);
            string path = WriteCase(fileName, mutated);
            try
            {
                load(path, mutated);
            }
            catch (MediatorDiTException ex)
            {
                if (ex.Message.Length == 0 || ex.Message.Contains('\n') || ex.Message.Contains('\r') || !ex.Message.EndsWith('.'))
                    problems.Add($"seed {seed} iteration {i} ({what}): the message is not one sentence: \"{ex.Message}\"");
            }
            catch (Exception ex)
            {
                problems.Add($"seed {seed} iteration {i} ({what}): {ex.GetType().Name}: {ex.Message} at {ex.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}");
            }
        }
        Assert.True(problems.Count == 0, $"{problems.Count} of {iterations} mutated {fileName} files failed badly:\n" + string.Join("\n", problems.Take(15)));
    }

    private string WriteCase(string fileName, byte[] bytes)
    {
        string path = _dir.File(fileName);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Recomputes every chunk CRC of a (mutated) PNG, so mutations reach the decoder behind the CRC check.</summary>
    private static byte[] FixPngCrcs(byte[] png)
    {
        byte[] fixedPng = (byte[])png.Clone();
        int at = 8;
        while (at + 12 <= fixedPng.Length)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(fixedPng.AsSpan(at));
            if (at + 12 + length > fixedPng.Length) break;
            uint crc = Crc32.Compute(fixedPng.AsSpan(at + 4, 4 + (int)length));
            BinaryPrimitives.WriteUInt32BigEndian(fixedPng.AsSpan(at + 8 + (int)length), crc);
            at += 12 + (int)length;
        }
        return fixedPng;
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    public void MutatedPngs(int seed, bool interlaced)
    {
        var pixels = Enumerable.Range(0, 7 * 5 * 3).Select(i => (byte)(i * 37)).ToArray();
        byte[] png;
        if (interlaced)
        {
            // An Adam7 palette image with transparency, built chunk by chunk.
            var rows = new byte[5 * (1 + 7)];
            for (int i = 0; i < rows.Length; i++) rows[i] = i % 8 == 0 ? (byte)0 : (byte)(i % 3);
            png = new PngTestBuilder().Header(7, 5, 8, 3, interlace: 1).Chunk("PLTE", [255, 0, 0, 0, 255, 0, 0, 0, 255])
                .Chunk("tRNS", [0, 128]).ImageData(Adam7Rows(rows, 7, 5)).End().ToArray();
        }
        else
        {
            png = PngEncoder.Encode(pixels, 7, 5, 3);
        }
        Fuzz("fuzz.png", png, seed, (path, bytes) =>
        {
            PngDecoder.Decode(bytes, path);
            PngDecoder.Read(path, new InputLimits { MaxImagePixels = 1 << 16 });
        }, FixPngCrcs);
    }

    [Theory]
    [InlineData(10, "rgb420.jpg")]
    [InlineData(11, "progressive.jpg")]
    [InlineData(12, "grey.jpg")]
    [InlineData(13, "cmyk.jpg")]
    public void MutatedJpegs(int seed, string vector)
    {
        // Pillow's files (baseline, progressive, grey, Adobe CMYK), through the SkiaSharp path; a mutation that only
        // garbles the entropy-coded data may still decode (libjpeg-turbo only warns), which is fine.
        Fuzz("fuzz.jpg", File.ReadAllBytes(ImageFileTests.VectorPath(vector)), seed, (path, bytes) =>
        {
            ImageFile.Decode(bytes, path);
            ImageFile.Read(path, new InputLimits { MaxImagePixels = 1 << 16 });
        });
    }

    [Theory]
    [InlineData(14, "lossy.webp")]
    [InlineData(15, "lossless_alpha.webp")]
    [InlineData(16, "lossy_alpha.webp")]
    public void MutatedWebPs(int seed, string vector)
    {
        Fuzz("fuzz.webp", File.ReadAllBytes(ImageFileTests.VectorPath(vector)), seed, (path, bytes) =>
        {
            ImageFile.Decode(bytes, path);
            ImageFile.Read(path, new InputLimits { MaxImagePixels = 1 << 16 });
        });
    }

    /// <summary>Non-interlaced 8-bit rows (filter byte + width samples) rearranged into Adam7 passes, each row with filter 0.</summary>
    private static byte[] Adam7Rows(byte[] rows, int width, int height)
    {
        (int X0, int Y0, int DX, int DY)[] passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];
        var output = new List<byte>();
        foreach (var (x0, y0, dx, dy) in passes)
        {
            if (x0 >= width || y0 >= height) continue;
            for (int y = y0; y < height; y += dy)
            {
                output.Add(0);
                for (int x = x0; x < width; x += dx) output.Add(rows[y * (width + 1) + 1 + x]);
            }
        }
        return [.. output];
    }

    [Theory]
    [InlineData(3, true)]
    [InlineData(4, false)]
    public void MutatedSampleNpzs(int seed, bool compressed)
    {
        string source = _dir.File("source.npz");
        using (var writer = new NpzWriter(source))
        {
            writer.WriteArray("arr_0", new StoredTensor(DType.U8, [3, 4, 4], Enumerable.Range(0, 48).Select(i => (byte)(i * 5)).ToArray()));
            writer.WriteArray("arr_1", StoredTensor.FromInt64([0, 7, 2], [3]));
            writer.Complete();
        }
        byte[] npz = File.ReadAllBytes(source);
        if (!compressed) npz = Restored(npz);
        var limits = new InputLimits { MaxArrayElements = 1 << 16, MaxImagePixels = 1 << 16 };
        Fuzz("fuzz.npz", npz, seed, (path, bytes) =>
        {
            SampleFiles.Load(path, limits: limits);
            using var reader = new NpzReader(new MemoryStream(bytes), path, limits: limits);
            foreach (string name in reader.Names) reader.Read(name);
        });
    }

    /// <summary>The same arrays in a zip whose entries are stored, not deflated, so mutations hit the .npy headers directly.</summary>
    private static byte[] Restored(byte[] npz)
    {
        using var input = new System.IO.Compression.ZipArchive(new MemoryStream(npz), System.IO.Compression.ZipArchiveMode.Read);
        var output = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(output, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in input.Entries)
            {
                using Stream from = entry.Open();
                using Stream to = zip.CreateEntry(entry.FullName, System.IO.Compression.CompressionLevel.NoCompression).Open();
                from.CopyTo(to);
            }
        }
        return output.ToArray();
    }

    private static readonly ModelConfig TinyConfig = new()
    {
        InputSize = 4, PatchSize = 2, InChannels = 1, HiddenSize = 8, Depth = 1, NumHeads = 2, NumClasses = 3,
        LearnSigma = false, MediatorNum = 1, Attention = AttentionKind.Mediator,
    };

    private static SiTModel TinyModel()
    {
        var model = new SiTModel(TinyConfig);
        int k = 0;
        foreach (var parameter in model.Parameters)
        {
            var span = parameter.Value.Span;
            for (int i = 0; i < span.Length; i++) span[i] = (k++ % 17) * 0.125f - 1f;
        }
        return model;
    }

    [Fact]
    public void MutatedModelSafeTensors()
    {
        string source = _dir.File("source.safetensors");
        ModelFiles.Save(TinyModel(), source);
        Fuzz("fuzz.safetensors", File.ReadAllBytes(source), 5, (path, _) =>
        {
            SafeTensors.Read(path);
            ModelFiles.Load(path);
        });
    }

    [Fact]
    public void MutatedModelConfigJson()
    {
        byte[] json = Encoding.UTF8.GetBytes(TinyConfig.ToJson());
        Fuzz("config.json", json, 6, (path, bytes) => ModelConfig.FromJson(Encoding.UTF8.GetString(bytes), path).Validate(), iterations: 2 * Iterations);
    }

    [Fact]
    public void MutatedConfigsInModelSafeTensors()
    {
        // The config is mutated as text and put back into a well-formed header, so big numbers reach the network's construction.
        string source = _dir.File("source.safetensors");
        ModelFiles.Save(TinyModel(), source);
        byte[] original = File.ReadAllBytes(source);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(original);
        var header = System.Text.Json.Nodes.JsonNode.Parse(original.AsSpan(8, (int)headerLength))!.AsObject();
        byte[] data = original[(8 + (int)headerLength)..];
        byte[] json = Encoding.UTF8.GetBytes(TinyConfig.ToJson());
        Fuzz("config.json", json, 8, (path, bytes) =>
        {
            header["__metadata__"]![ModelFiles.ConfigMetadataKey] = Encoding.UTF8.GetString(bytes);
            byte[] text = Encoding.UTF8.GetBytes(header.ToJsonString());
            var file = new byte[8 + text.Length + data.Length];
            BinaryPrimitives.WriteInt64LittleEndian(file, text.Length);
            text.CopyTo(file, 8);
            data.CopyTo(file, 8 + text.Length);
            string weights = Path.ChangeExtension(path, ".safetensors");
            File.WriteAllBytes(weights, file);
            ModelFiles.Load(weights);
        }, iterations: 80);
    }

    [Fact]
    public void MutatedTorchCheckpoints()
    {
        // The tiny model's state dict as torch.save writes it: an OrderedDict of float32 tensors, one storage each.
        var state = StateDict.FromParameters(TinyModel());
        var p = new PickleBuilder().Proto(2).Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark();
        var storages = new Dictionary<string, byte[]>();
        foreach (var (name, tensor) in state)
        {
            string key = storages.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            long[] size = tensor.Shape.Select(d => (long)d).ToArray();
            var stride = new long[size.Length];
            for (int d = size.Length - 1, s = 1; d >= 0; s *= tensor.Shape[d], d--) stride[d] = s;
            p.Str(name).Tensor("FloatStorage", key, tensor.ElementCount, 0, size, stride);
            storages[key] = tensor.Bytes.ToArray();
        }
        p.SetItems().Stop();
        string source = _dir.File("source.pt");
        TorchZipWriter.Write(source, p.ToArray(), storages);
        Fuzz("fuzz.pt", File.ReadAllBytes(source), 7, (path, _) =>
        {
            TorchFile.Load(path);
            TorchFile.LoadStateDict(path);
            ModelFiles.Load(path, family: ModelFamily.SiT);
        });
    }

    [Fact]
    public void MutatedTrainingCheckpoints()
    {
        // A real 2-step run's checkpoint, loaded for resume and exported, as `mdit train --resume` and `mdit export` do.
        string data = MediatorDiT.Tests.Training.TrainerTests.MakeData();
        string run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        var config = MediatorDiT.Tests.Training.TrainerTests.Tiny(data, 2);
        new Trainer().Run(config, run, false, new Trainer.Options(), CancellationToken.None);
        var resolved = Trainer.Resolve(config, new SampleShape(2, 8, 8), 3);
        string exported = _dir.File("exported");
        Fuzz("0000002.safetensors", File.ReadAllBytes(TrainingCheckpoint.PathFor(run, 2)), 9, (path, _) =>
        {
            var network = TrainableNetwork.Create(resolved.ModelConfig!, resolved.Mediators);
            var ema = TrainableNetwork.Create(resolved.ModelConfig!, resolved.Mediators);
            TrainingCheckpoint.Load(path, network, ema, new AdamW(network.Parameters));
            CheckpointExport.Export(path, useEma: true, exported);
        }, iterations: 80);
        Directory.Delete(Path.GetDirectoryName(data)!, recursive: true);
    }
}
