using MediatorDiT.Models;
using MediatorDiT.IO;

namespace MediatorDiT.Tests.Models;

/// <summary>Blocks sharing one set of forward buffers (inference) compute what separate buffers compute, and refuse backward.</summary>
public class SharedInferenceBuffersTests
{
    [Theory]
    [InlineData("mediator_grid8_m16")]
    [InlineData("full_grid8")]
    [InlineData("dit_model")]
    public void SharedBuffersGiveTheOfficialOutputAndRefuseBackward(string name)
    {
        var shared = ModelFiles.Load(Fixtures.PathOf(name + ".weights.safetensors"));
        var separate = ModelFiles.Load(Fixtures.PathOf(name + ".weights.safetensors"));
        shared.KeepActivations = false;
        var io = SafeTensors.Read(Fixtures.PathOf(name + ".io.safetensors"));
        var x = io.GetFloat("x");
        var tStored = io.Get("t");
        float[] t = tStored.DType == DType.F32 ? tStored.ToFloat().Span.ToArray() : tStored.ToInt64().Select(v => (float)v).ToArray();
        int[] y = io.GetInt64("y").Select(v => (int)v).ToArray();

        for (int call = 0; call < 2; call++) // twice: the second call reuses buffers the last block left behind
        {
            var ours = shared.Forward(x, t, y).Span.ToArray();
            Assert.Equal(separate.Forward(x, t, y).Span.ToArray(), ours);
            TestData.AssertClose(io.GetFloat("out").Span, ours, 1e-4f, $"{name} out (call {call})");
        }
        var dOut = new MediatorDiT.Tensors.Tensor(io.GetFloat("out").Shape);
        var e = Assert.Throws<MediatorDiTException>(() => shared.Backward(dOut));
        Assert.Contains("KeepActivations", e.Message);
    }
}
