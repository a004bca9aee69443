using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.IO;

/// <summary>Weights read tensor by tensor: memory-mapped safetensors, streamed .pt records, F16/BF16 widened on load.</summary>
public class MappedWeightsTests
{
    [Fact]
    public void MappedTensorsEqualTheOnesReadIntoMemory()
    {
        string path = Fixtures.PathOf("mediator_grid8_m16.weights.safetensors");
        var read = SafeTensors.Read(path);
        using var mapped = SafeTensors.Map(path);
        Assert.Equal(read.Metadata, mapped.Metadata);
        Assert.Equal(read.Keys, mapped.Keys);
        foreach (var key in read.Keys)
        {
            Assert.True(mapped.Get(key).IsInFile);
            Assert.Equal(read.Get(key).Bytes.ToArray(), mapped.Get(key).Bytes.ToArray());
            Assert.Equal(read.GetFloat(key).Span.ToArray(), mapped.GetFloat(key).Span.ToArray());
        }
    }

    [Fact]
    public void ATensorOfADisposedMappingCannotBeRead()
    {
        var mapped = SafeTensors.Map(Fixtures.PathOf("mediator_grid4_m4.weights.safetensors"));
        var tensor = mapped.Get("pos_embed");
        mapped.Dispose();
        var e = Assert.Throws<MediatorDiTException>(() => tensor.ToFloat());
        Assert.Contains("already closed", e.Message);
    }

    [Fact]
    public void MappingValidatesLikeReading()
    {
        using var dir = new TempDirectory();
        string cut = dir.File("cut.safetensors");
        var bytes = File.ReadAllBytes(Fixtures.PathOf("mediator_grid4_m4.weights.safetensors"));
        File.WriteAllBytes(cut, bytes[..^10]);
        Assert.Contains("truncated", Assert.Throws<MediatorDiTException>(() => SafeTensors.Map(cut)).Message);
    }

    [Theory]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void HalfPrecisionCheckpointsAreWidenedToFloat32OnLoad(DType dtype)
    {
        using var dir = new TempDirectory();
        string source = Fixtures.PathOf("dit_model.weights.safetensors");
        var original = SafeTensors.Read(source);
        string path = dir.File($"dit_{dtype}.safetensors");
        var half = original.Tensors.ToDictionary(kv => kv.Key, kv => StoredTensor.FromFloat(kv.Value.ToFloat(), dtype));
        SafeTensors.Write(path, half, original.Metadata);

        var model = ModelFiles.Load(path);
        foreach (var p in model.Parameters)
        {
            var stored = original.GetFloat(p.Name).Span;
            for (int i = 0; i < stored.Length; i++)
            {
                float expected = dtype == DType.F16 ? (float)(Half)stored[i] : RoundToBFloat16(stored[i]);
                Assert.Equal(expected, p.Value.Span[i]);
            }
        }
    }

    [Fact]
    public void AStreamedPtCheckpointLoadsTheSameWeightsAsItsSafetensorsTwin()
    {
        var fromPt = ModelFiles.Load(Fixtures.PathOf("dit_model.pt"), numHeads: 4);
        var fromSafetensors = ModelFiles.Load(Fixtures.PathOf("dit_model.weights.safetensors"));
        Assert.Equal(fromSafetensors.Config with { ClassDropoutProb = fromPt.Config.ClassDropoutProb }, fromPt.Config);
        for (int i = 0; i < fromPt.Parameters.Count; i++)
            Assert.Equal(fromSafetensors.Parameters[i].Value.Span.ToArray(), fromPt.Parameters[i].Value.Span.ToArray());

        using var open = TorchFile.OpenStateDict(Fixtures.PathOf("mediator_grid4_m4.checkpoint.pt"), "model");
        var inMemory = TorchFile.LoadStateDict(Fixtures.PathOf("mediator_grid4_m4.checkpoint.pt"), "model");
        Assert.Equal(inMemory.Keys.Order(), open.Tensors.Keys.Order());
        foreach (var (key, tensor) in inMemory)
            Assert.Equal(tensor.ToFloat().Span.ToArray(), open.Tensors[key].ToFloat().Span.ToArray());
    }

    /// <summary>Round to nearest even on the top 16 bits, written out here independently of the library.</summary>
    private static float RoundToBFloat16(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        uint rounded = bits + 0x7FFF + ((bits >> 16) & 1);
        return BitConverter.UInt32BitsToSingle(rounded & 0xFFFF0000u);
    }
}
