using System.Text.Json;
using MediatorDiT.Data;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Tests.Evaluation;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit eval` end to end on a tiny .npz, against a synthetic mnist cache and a small classifier.</summary>
public class EvalCommandTests
{
    [Fact]
    public void EvalPrintsTheMetricsAndTheFloorAndTheyMatchTheApi()
    {
        string dataDir = SyntheticDigits.CreateDataDir();
        string dir = CliRunner.TempDir();
        try
        {
            var classifier = SyntheticDigits.Classifier(11);
            string classifierPath = Path.Combine(dir, "classifier.safetensors");
            classifier.Save(classifierPath, new Dictionary<string, string> { ["dataset"] = "mnist" });

            // 24 training images as "samples", stored as mdit sample stores them: RGB uint8 NHWC.
            var train = PixelDataset.Open("mnist", DatasetSplit.Train, null, dataDir);
            int n = 24;
            var images = new MediatorDiT.Tensors.Tensor(n, 1, 32, 32);
            var labels = new int[n];
            for (int i = 0; i < n; i++) train.Get(i * 300, images.Span.Slice(i * 1024, 1024), out labels[i]);
            var grey = ImageConversion.ToBytes(images);
            var rgb = new byte[grey.Length * 3];
            for (int i = 0; i < grey.Length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = grey[i];
            // The labels the samples were "generated for": the true ones, except every fourth moved on by one.
            var requested = labels.Select((l, i) => i % 4 == 0 ? (l + 1) % 10 : l).ToArray();
            string npz = Path.Combine(dir, "samples.npz");
            using (var w = new NpzWriter(npz))
            {
                w.WriteArray("arr_0", new StoredTensor(DType.U8, [n, 32, 32, 3], rgb));
                w.WriteArray("arr_1", StoredTensor.FromInt64(requested.Select(l => (long)l).ToArray(), [n]));
                w.Complete();
            }

            string json = Path.Combine(dir, "out", "metrics.json");
            var r = CliRunner.Run("eval", "--samples", npz, "--reference", "test", "--classifier", classifierPath, "--data-dir", dataDir, "--json", json);
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("samples vs mnist test", r.Stdout);
            Assert.Contains("floor: mnist test vs mnist train", r.Stdout);

            // The same numbers through the API, with the reference the command cached.
            var evaluator = new SampleEvaluator(classifier);
            var expected = evaluator.Evaluate(images, requested, evaluator.Reference("mnist", DatasetSplit.Test, dataDir));
            var outputs = evaluator.Extract(images);
            double agreement = Enumerable.Range(0, n).Count(i => outputs.Predicted(i) == requested[i]) / (double)n;
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            var result = doc.RootElement.GetProperty("result");
            Assert.Equal(n, result.GetProperty("Count").GetInt32());
            Assert.Equal(expected.Fid, result.GetProperty("Fid").GetDouble(), 9);
            Assert.Equal(expected.Precision, result.GetProperty("Precision").GetDouble());
            Assert.Equal(expected.Recall, result.GetProperty("Recall").GetDouble());
            Assert.Equal(expected.InceptionScore, result.GetProperty("InceptionScore").GetDouble(), 9);
            Assert.Equal(agreement, result.GetProperty("ClassAgreement").GetDouble(), 12);
            Assert.Equal("arr_1", doc.RootElement.GetProperty("labels").GetString());

            var floor = doc.RootElement.GetProperty("floor");
            var test = evaluator.Reference("mnist", DatasetSplit.Test, dataDir);
            var expectedFloor = evaluator.Evaluate(test.Outputs, test.Labels, evaluator.Reference("mnist", DatasetSplit.Train, dataDir));
            Assert.Equal(997, floor.GetProperty("Count").GetInt32());
            Assert.Equal(expectedFloor.Fid, floor.GetProperty("Fid").GetDouble(), 9);
            Assert.Equal(expectedFloor.ClassAgreement!.Value, floor.GetProperty("ClassAgreement").GetDouble(), 12);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public void EvalWithoutImagesOrWithABadReferenceFailsWithOneSentence()
    {
        string dir = CliRunner.TempDir();
        var r = CliRunner.Run("eval", "--samples", Path.Combine(dir, "missing.npz"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("missing.npz", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);

        r = CliRunner.Run("eval", "--samples", dir, "--reference", "validation");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("validation", r.Stderr);
    }
}
