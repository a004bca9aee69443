using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Tests.IO;

namespace MediatorDiT.Tests.Data;

public class LatentDatasetTests
{
    private static float[] Values(int count) => Enumerable.Range(0, count).Select(i => (i % 97) * 0.125f - 3f).ToArray();

    private static string Write(TempDirectory dir, DType dtype, int[] shape, long[] labels, string name = "latents.safetensors")
    {
        string path = dir.File(name);
        var latents = StoredTensor.FromFloat(Values(shape.Aggregate(1, (a, b) => a * b)), shape, dtype);
        SafeTensors.Write(path, new Dictionary<string, StoredTensor>
        {
            ["latents"] = latents,
            ["labels"] = StoredTensor.FromInt64(labels, [labels.Length]),
        });
        return path;
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void ReadsLatentsAndLabels(DType dtype)
    {
        using var dir = new TempDirectory();
        string path = Write(dir, dtype, [5, 4, 2, 3], [3, 0, 1, 3, 2]);

        var dataset = LatentDataset.Load(path);
        var sample = new float[24];
        dataset.Get(3, sample, out int label);

        Assert.Equal(5, dataset.Count);
        Assert.Equal(4, dataset.NumClasses); // largest label + 1
        Assert.Equal(new SampleShape(4, 2, 3), dataset.SampleShape);
        Assert.Equal(3, label);
        Assert.Equal(Values(5 * 24).AsSpan(3 * 24, 24).ToArray(), sample); // the values are exact in all three dtypes
    }

    [Fact]
    public void ScaleMultipliesTheStoredValues()
    {
        using var dir = new TempDirectory();
        string path = Write(dir, DType.F32, [2, 1, 2, 2], [0, 1]);

        var dataset = LatentDataset.Load(path, scale: 0.5f);
        var sample = new float[4];
        dataset.Get(1, sample, out _);

        Assert.Equal(Values(8).Skip(4).Select(v => v * 0.5f), sample);
    }

    [Fact]
    public void SaveWritesNumClassesThatLoadUses()
    {
        using var dir = new TempDirectory();
        string path = dir.File("saved.safetensors");
        LatentDataset.Save(path, StoredTensor.FromFloat(Values(12), [3, 1, 2, 2], DType.BF16), [0, 1, 1], numClasses: 1000);

        var dataset = LatentDataset.Load(path);

        Assert.Equal(1000, dataset.NumClasses);
        Assert.Equal(DType.BF16, dataset.StoredDType);
        Assert.Equal(5, LatentDataset.Load(path, numClasses: 5).NumClasses);
    }

    [Fact]
    public void WorksWithTheLoader()
    {
        using var dir = new TempDirectory();
        var dataset = LatentDataset.Load(Write(dir, DType.F16, [6, 2, 2, 2], [0, 1, 2, 0, 1, 2]));
        var loader = new DataLoader(dataset, new DataLoaderOptions { BatchSize = 4, Seed = 3 });

        DataBatch batch = loader.GetBatch(0);

        Assert.Equal([4, 2, 2, 2], batch.Images.Shape);
        Assert.Equal(batch.SampleIndices.Select(i => i % 3), batch.Labels);
    }

    [Fact]
    public void MissingKeyIsNamed()
    {
        using var dir = new TempDirectory();
        string path = dir.File("x.safetensors");
        SafeTensors.Write(path, new Dictionary<string, StoredTensor> { ["x"] = StoredTensor.FromFloat(Values(8), [2, 1, 2, 2]) });

        var error = Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(path));

        Assert.Contains("has no array 'latents' or 'labels'", error.Message);
        Assert.Contains("found 'x'", error.Message);
    }

    [Fact]
    public void NonFourDimensionalLatentsAreRejected()
    {
        using var dir = new TempDirectory();
        string path = Write(dir, DType.F32, [2, 8], [0, 1]);

        var error = Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(path));

        Assert.Contains("tensor 'latents' has shape [2, 8], but 4 axes (N, C, H, W) were expected", error.Message);
    }

    [Fact]
    public void LabelCountMustMatch()
    {
        using var dir = new TempDirectory();
        string path = Write(dir, DType.F32, [3, 1, 2, 2], [0, 1]);

        var error = Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(path));

        Assert.Contains("holds 2 labels but 'latents' holds 3 latents", error.Message);
    }

    [Fact]
    public void FloatLabelsAndIntegerLatentsAreRejected()
    {
        using var dir = new TempDirectory();
        string floatLabels = dir.File("a.safetensors");
        SafeTensors.Write(floatLabels, new Dictionary<string, StoredTensor>
        {
            ["latents"] = StoredTensor.FromFloat(Values(4), [1, 1, 2, 2]),
            ["labels"] = StoredTensor.FromFloat([1f], [1]),
        });
        string intLatents = dir.File("b.safetensors");
        SafeTensors.Write(intLatents, new Dictionary<string, StoredTensor>
        {
            ["latents"] = StoredTensor.FromInt64([1, 2, 3, 4], [1, 1, 2, 2]),
            ["labels"] = StoredTensor.FromInt64([0], [1]),
        });

        Assert.Contains("'labels' has dtype F32, but integer class indices", Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(floatLabels)).Message);
        Assert.Contains("'latents' has dtype I64, but F32, F16 or BF16", Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(intLatents)).Message);
    }

    [Fact]
    public void LabelsMustBeValidClasses()
    {
        using var dir = new TempDirectory();

        Assert.Contains("label 1 is -1", Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(Write(dir, DType.F32, [2, 1, 1, 1], [0, -1], "n.safetensors"))).Message);
        Assert.Contains("label 1 is 7, but the dataset was opened with 5 classes",
            Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(Write(dir, DType.F32, [2, 1, 1, 1], [0, 7], "m.safetensors"), numClasses: 5)).Message);
    }

    [Fact]
    public void OtherFileTypesAreRefused()
    {
        var error = Assert.Throws<MediatorDiTException>(() => LatentDataset.Load("/data/latents.pt"));

        Assert.Contains("are read from .safetensors, .npz or .npy files", error.Message);
        Assert.Contains("but the file ends in '.pt'", error.Message);
    }

    [Fact]
    public void ReadsNpzArchives()
    {
        using var dir = new TempDirectory();
        string path = dir.File("latents.npz");
        TestNpyWriter.WriteNpz(path, ("labels", TestNpyWriter.Int64([2, 0, 1])), ("latents", TestNpyWriter.Float32(Values(3 * 8), 3, 2, 2, 2)));

        var dataset = LatentDataset.Load(path);
        var sample = new float[8];
        dataset.Get(2, sample, out int label);

        Assert.Equal(3, dataset.Count);
        Assert.Equal(3, dataset.NumClasses);
        Assert.Equal(new SampleShape(2, 2, 2), dataset.SampleShape);
        Assert.Equal(1, label);
        Assert.Equal(Values(24).Skip(16), sample);
    }

    [Fact]
    public void NpzWithoutLabelsIsNamed()
    {
        using var dir = new TempDirectory();
        string path = dir.File("only.npz");
        TestNpyWriter.WriteNpz(path, ("latents", TestNpyWriter.Float32(Values(8), 1, 2, 2, 2)), ("y", TestNpyWriter.Int64([0])));

        var error = Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(path));

        Assert.Contains("has no array 'labels'", error.Message);
        Assert.Contains("found 'latents', 'y'", error.Message);
    }

    [Fact]
    public void ReadsNpyPairsByFileOrFolder()
    {
        using var dir = new TempDirectory();
        File.WriteAllBytes(dir.File("train_latents.npy"), TestNpyWriter.Float32(Values(16), 2, 1, 2, 4));
        File.WriteAllBytes(dir.File("train_labels.npy"), TestNpyWriter.Int64([1, 4]));
        Directory.CreateDirectory(dir.File("pair"));
        File.WriteAllBytes(Path.Combine(dir.Path, "pair", "latents.npy"), TestNpyWriter.Float32(Values(4), 1, 1, 2, 2));
        File.WriteAllBytes(Path.Combine(dir.Path, "pair", "labels.npy"), TestNpyWriter.Int64([0]));

        var byFile = LatentDataset.Load(dir.File("train_latents.npy"));
        var byFolder = LatentDataset.Load(dir.File("pair"));

        Assert.Equal(2, byFile.Count);
        Assert.Equal(5, byFile.NumClasses);
        Assert.Equal(new SampleShape(1, 2, 4), byFile.SampleShape);
        Assert.Equal(1, byFolder.Count);
        Assert.Contains("train_labels.npy: does not exist",
            Assert.Throws<MediatorDiTException>(() => { File.Delete(dir.File("train_labels.npy")); LatentDataset.Load(dir.File("train_latents.npy")); }).Message);
        Assert.Contains("must have 'latents' in its name",
            Assert.Throws<MediatorDiTException>(() => LatentDataset.Load(dir.File("codes.npy"))).Message);
    }
}
