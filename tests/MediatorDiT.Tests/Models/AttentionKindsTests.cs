using MediatorDiT.Models;

namespace MediatorDiT.Tests.Models;

public class AttentionKindsTests
{
    [Fact]
    public void NamesAndCountsComeFromTheConfig()
    {
        var mediator = new ModelConfig { Attention = AttentionKind.Mediator, MediatorNum = 16 };
        var full = mediator with { Attention = AttentionKind.Full };
        Assert.Equal(("16 mediators", "m16", 16), (AttentionKinds.Describe(mediator), AttentionKinds.ShortName(mediator), AttentionKinds.MediatorCount(mediator)));
        Assert.Equal(("full attention", "full", 0), (AttentionKinds.Describe(full), AttentionKinds.ShortName(full), AttentionKinds.MediatorCount(full)));
    }
}
