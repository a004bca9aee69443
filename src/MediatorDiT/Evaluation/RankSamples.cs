using System.Globalization;
using System.Text.RegularExpressions;
using MediatorDiT.IO;

namespace MediatorDiT.Evaluation;

/// <summary>
/// The per-rank sample files of a sharded `mdit sample` (rank r of w makes the images i with i mod w = r and writes
/// them, in index order, to samples-rank{r}.npz) joined into one samples.npz in global index order, as the ADM
/// evaluation suite reads it; with every rank's run-rank{r}.json beside them, the labels go into arr_1.
/// Streams: one image at a time, whatever the number of images.
/// </summary>
public static partial class RankSamples
{
    [GeneratedRegex(@"^samples-rank(\d+)\.npz$")]
    private static partial Regex FileName();

    /// <summary>The joined result: images, ranks, and whether labels were written (arr_1).</summary>
    public sealed record Joined(string Path, int Images, int Ranks, bool Labels);

    /// <summary>samples-rank0.npz .. samples-rank{w-1}.npz of <paramref name="folder"/>, in rank order.</summary>
    /// <exception cref="MediatorDiTException">There are none, or a rank's file is missing.</exception>
    public static IReadOnlyList<string> Find(string folder)
    {
        if (!Directory.Exists(folder)) throw new MediatorDiTException($"the sample folder '{folder}' does not exist.");
        var byRank = new SortedDictionary<int, string>();
        foreach (string file in Directory.EnumerateFiles(folder))
            if (FileName().Match(Path.GetFileName(file)) is { Success: true } m && int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int r))
                byRank[r] = file;
        if (byRank.Count == 0) throw new MediatorDiTException($"{folder} holds no samples-rank<r>.npz files (written by `mdit sample --npz` with more than one rank).");
        int size = byRank.Keys.Max() + 1;
        var missing = Enumerable.Range(0, size).Where(r => !byRank.ContainsKey(r)).ToArray();
        if (missing.Length > 0)
            throw new MediatorDiTException($"{folder} has samples of {size} ranks but no samples-rank{missing[0]}.npz{(missing.Length > 1 ? $" (nor {missing.Length - 1} more)" : "")}; rerun the missing ranks first.");
        return byRank.Values.ToArray();
    }

    /// <summary>Joins <paramref name="rankFiles"/> (rank order) into <paramref name="output"/>, written atomically.</summary>
    /// <exception cref="MediatorDiTException">A file is no rank's sample file, shapes differ, or the counts do not fit one run.</exception>
    public static Joined Join(IReadOnlyList<string> rankFiles, string output, InputLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(rankFiles);
        if (rankFiles.Count == 0) throw new MediatorDiTException("no rank files to join.");
        int w = rankFiles.Count;
        var readers = new List<NpzReader>();
        var arrays = new List<NpyArrayReader>();
        try
        {
            int[]? image = null;
            var counts = new int[w];
            for (int r = 0; r < w; r++)
            {
                var npz = new NpzReader(rankFiles[r], limits);
                readers.Add(npz);
                var header = npz.GetHeader("arr_0");
                if (header.DType != DType.U8 || header.Shape.Length != 4)
                    throw new MediatorDiTException($"{rankFiles[r]}: arr_0 is {header}, but a rank's samples are uint8 (N, H, W, C).");
                if (image is null) image = header.Shape[1..];
                else if (!image.AsSpan().SequenceEqual(header.Shape.AsSpan(1)))
                    throw new MediatorDiTException($"{rankFiles[r]}: holds {StoredTensor.FormatShape(header.Shape[1..])} images but {rankFiles[0]} holds {StoredTensor.FormatShape(image)}; all ranks must come from one run.");
                counts[r] = header.Shape[0];
            }
            int total = counts.Sum();
            for (int r = 0; r < w; r++)
            {
                int expected = (total - r + w - 1) / w;
                if (counts[r] != expected)
                    throw new MediatorDiTException(
                        $"{rankFiles[r]}: holds {counts[r]} images, but rank {r} of {w} makes {expected} of the {total} images in all; the files are not the ranks of one finished run.");
            }
            var labels = ReadLabels(rankFiles, counts, total);
            foreach (var npz in readers) arrays.Add(npz.OpenArray("arr_0"));
            int bytes = image![0] * image[1] * image[2];
            var buffer = new byte[bytes];
            using (var writer = new NpzWriter(output))
            {
                var array = writer.BeginArray("arr_0", DType.U8, [total, .. image]);
                for (int i = 0; i < total; i++)
                {
                    arrays[i % w].ReadBytes(buffer);
                    array.WriteBytes(buffer);
                }
                if (labels is not null) writer.WriteArray("arr_1", new StoredTensor(DType.I64, [total], labels.SelectMany(l => BitConverter.GetBytes((long)l)).ToArray()));
                writer.Complete();
            }
            return new Joined(output, total, w, labels is not null);
        }
        finally
        {
            foreach (var a in arrays) a.Dispose();
            foreach (var r in readers) r.Dispose();
        }
    }

    /// <summary>Labels in global order from run-rank{r}.json beside every rank file; null when any is missing.</summary>
    private static int[]? ReadLabels(IReadOnlyList<string> rankFiles, int[] counts, int total)
    {
        var labels = new int[total];
        var seen = new bool[total];
        for (int r = 0; r < rankFiles.Count; r++)
        {
            string record = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(rankFiles[r]))!, $"run-rank{r}.json");
            if (!File.Exists(record)) return null;
            foreach (var (index, label) in SampleFiles.ReadRunRecord(record))
            {
                if (index < 0 || index >= total || index % rankFiles.Count != r)
                    throw new MediatorDiTException($"{record}: records image {index}, which is not one of rank {r}'s {counts[r]} images.");
                (labels[index], seen[index]) = (label, true);
            }
        }
        int missing = Array.IndexOf(seen, false);
        if (missing >= 0) throw new MediatorDiTException($"no run-rank<r>.json records image {missing}; the records are not those of the joined samples.");
        return labels;
    }
}
