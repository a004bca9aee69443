using System.Text.Json;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.IO;

public class SafeTensorsFixtureTests
{
    public static TheoryData<string> AllSafeTensorsFixtures()
    {
        var data = new TheoryData<string>();
        foreach (string path in Directory.GetFiles(Fixtures.Dir, "*.safetensors").Order())
            data.Add(Path.GetFileName(path));
        return data;
    }

    [Theory]
    [MemberData(nameof(AllSafeTensorsFixtures))]
    public void EveryFixtureReads(string name)
    {
        string path = Fixtures.PathOf(name);
        SafeTensorsFile file = SafeTensors.Read(path);
        Assert.NotEmpty(file.Tensors);
        long dataBytes = 0;
        foreach (var (key, tensor) in file.Tensors)
        {
            Assert.Contains(tensor.DType, new[] { DType.F32, DType.F64, DType.I64 });
            Assert.Equal(tensor.ElementCount * tensor.DType.ElementSize(), tensor.Bytes.Length);
            dataBytes += tensor.Bytes.Length;
            if (tensor.DType.IsFloatingPoint()) Assert.Equal(tensor.ElementCount, file.GetFloat(key).Length);
            else Assert.Equal(tensor.ElementCount, file.GetInt64(key).Length);
        }
        // Every data byte belongs to exactly one tensor: 8 + header + data is the file size.
        byte[] lengthField = new byte[8];
        using (FileStream stream = File.OpenRead(path)) stream.ReadExactly(lengthField);
        Assert.Equal(new FileInfo(path).Length, 8 + BitConverter.ToInt64(lengthField) + dataBytes);
    }

    [Fact]
    public void FixtureListIsComplete()
    {
        // Guards the theory above against silently running on an empty or partial folder.
        Assert.True(Directory.GetFiles(Fixtures.Dir, "*.safetensors").Length >= 15);
    }

    [Fact]
    public void MediatorWeightsHaveConfigMetadataAndOfficialKeys()
    {
        SafeTensorsFile file = SafeTensors.Read(Fixtures.PathOf("mediator_grid8_m16.weights.safetensors"));

        using JsonDocument config = JsonDocument.Parse(file.Metadata["config"]);
        Assert.Equal("mediator", config.RootElement.GetProperty("attention").GetString());
        Assert.Equal(16, config.RootElement.GetProperty("mediator_num").GetInt32());
        Assert.Equal(64, config.RootElement.GetProperty("hidden_size").GetInt32());
        Assert.Equal(2, config.RootElement.GetProperty("depth").GetInt32());

        Assert.Equal(48, file.Tensors.Count);
        Assert.Equal("pos_embed", file.Tensors.Keys.First()); // header (state-dict) order is kept
        Assert.Equal("final_layer.adaLN_modulation.1.bias", file.Tensors.Keys.Last());
        var expected = new Dictionary<string, int[]>
        {
            ["pos_embed"] = [1, 64, 64],
            ["x_embedder.proj.weight"] = [64, 4, 2, 2],
            ["y_embedder.embedding_table.weight"] = [11, 64],
            ["blocks.0.attn.an_bias"] = [4, 16, 7, 7],
            ["blocks.0.attn.na_bias"] = [4, 16, 7, 7],
            ["blocks.0.attn.ah_bias"] = [1, 4, 16, 8, 1],
            ["blocks.0.attn.aw_bias"] = [1, 4, 16, 1, 8],
            ["blocks.0.attn.ha_bias"] = [1, 4, 8, 1, 16],
            ["blocks.0.attn.wa_bias"] = [1, 4, 1, 8, 16],
            ["blocks.1.attn.qkv.weight"] = [192, 64],
            ["blocks.1.attn.dwc.weight"] = [64, 1, 3, 3],
            ["final_layer.linear.weight"] = [32, 64],
        };
        foreach (var (key, shape) in expected)
        {
            Assert.Equal(DType.F32, file.Tensors[key].DType);
            Assert.Equal(shape, file.Tensors[key].Shape);
        }
    }

    [Fact]
    public void PosEmbedIsTheSinCosEmbeddingAtTheOrigin()
    {
        // Token 0 sits at grid position (0, 0): each half (h, then w) is sin(0) x16 then cos(0) x16.
        float[] pos = SafeTensors.Read(Fixtures.PathOf("mediator_grid8_m16.weights.safetensors")).GetFloat("pos_embed").Span[..64].ToArray();
        float[] expected = [.. Enumerable.Repeat(0f, 16), .. Enumerable.Repeat(1f, 16), .. Enumerable.Repeat(0f, 16), .. Enumerable.Repeat(1f, 16)];
        Assert.Equal(expected, pos);
    }

    [Theory]
    [InlineData("mediator_grid8_m16.io.safetensors", new long[] { 8, 0, 9 })]
    [InlineData("full_grid8.io.safetensors", new long[] { 5, 7, 4 })]
    [InlineData("mediator_grid4_m4.io.safetensors", new long[] { 3, 0, 8 })]
    public void IoFilesHoldI64LabelsAndF32Inputs(string name, long[] labels)
    {
        SafeTensorsFile file = SafeTensors.Read(Fixtures.PathOf(name));
        Assert.Equal(DType.I64, file.Tensors["y"].DType);
        Assert.Equal(DType.F32, file.Tensors["x"].DType);
        Assert.Equal(labels, file.GetInt64("y"));
        Assert.Equal(3, file.GetFloat("x").Shape[0]);
        long[] cfgLabels = file.GetInt64("cfg.y");
        Assert.Equal(labels, cfgLabels[..3]);
        Assert.All(cfgLabels[3..], label => Assert.Equal(10, label)); // the null class
    }

    [Fact]
    public void DiffusionScheduleHoldsF64()
    {
        SafeTensorsFile file = SafeTensors.Read(Fixtures.PathOf("dit_diffusion.io.safetensors"));
        StoredTensor betas = file.Get("full.betas");
        Assert.Equal(DType.F64, betas.DType);
        Assert.Equal([1000], betas.Shape);
        float[] values = betas.ToFloat().Span.ToArray();
        Assert.Equal(0.0001f, values[0], 1e-9f); // DiT's linear schedule: 1e-4 ... 0.02
        Assert.Equal(0.02f, values[^1], 1e-9f);
    }

    [Fact]
    public void MissingKeyAndWrongDTypeAreClearErrors()
    {
        string path = Fixtures.PathOf("mediator_grid8_m16.io.safetensors");
        SafeTensorsFile file = SafeTensors.Read(path);
        var missing = Assert.Throws<MediatorDiTException>(() => file.GetFloat("block7.out"));
        Assert.Contains(path, missing.Message);
        Assert.Contains("'block7.out'", missing.Message);
        var notInteger = Assert.Throws<MediatorDiTException>(() => file.GetInt64("x"));
        Assert.Contains(path, notInteger.Message);
        Assert.Contains("'x'", notInteger.Message);
        Assert.Contains("F32", notInteger.Message);
    }
}
