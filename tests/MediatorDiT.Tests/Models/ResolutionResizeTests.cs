using MediatorDiT.IO;
using MediatorDiT.Models;

namespace MediatorDiT.Tests.Models;

public class ResolutionResizeTests
{
    [Fact]
    public void MatchesTheOfficialInterpolateStateDict()
    {
        var io = SafeTensors.Read(Fixtures.PathOf("resize_state_dict.io.safetensors"));
        var low = io.Tensors.Where(kv => kv.Key.StartsWith("low.")).ToDictionary(kv => kv.Key["low.".Length..], kv => kv.Value);
        var high = io.Tensors.Where(kv => kv.Key.StartsWith("high.")).ToDictionary(kv => kv.Key["high.".Length..], kv => kv.Value);
        var target = new ModelConfig { InputSize = 16, PatchSize = 2, InChannels = 4, HiddenSize = 64, Depth = 1, NumHeads = 4, NumClasses = 10, MediatorNum = 16 };
        var ours = ResolutionResize.Interpolate(low, target);
        Assert.Equal(high.Keys.OrderBy(k => k), ours.Keys.OrderBy(k => k));
        foreach (var (key, expected) in high)
        {
            Assert.Equal(expected.Shape, ours[key].Shape);
            TestData.AssertClose(expected.ToFloat().Span, ours[key].ToFloat().Span, 1e-5f, key);
        }
        // The result loads strictly into a model at the new resolution.
        StateDict.LoadInto(new SiTModel(target), ours, strict: true, "resized");
    }
}
