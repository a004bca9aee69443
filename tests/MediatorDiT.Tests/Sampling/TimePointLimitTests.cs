using MediatorDiT.Sampling;

namespace MediatorDiT.Tests.Sampling;

/// <summary>The samplers refuse step counts whose time grid could not be allocated (int.MaxValue points used to end in OutOfMemoryException).</summary>
public class TimePointLimitTests
{
    [Fact]
    public void SdeAndOdeSamplersRefuseMoreThanTheMaximumTimePoints()
    {
        var sde = Assert.Throws<MediatorDiTException>(() => new SdeSamplerOptions { NumSteps = int.MaxValue }.Validate());
        Assert.Equal($"an SDE sampler takes at most {TimeGrid.MaxPoints} time points (num_steps), got {int.MaxValue}.", sde.Message);
        var ode = Assert.Throws<MediatorDiTException>(() => new OdeSamplerOptions { NumSteps = TimeGrid.MaxPoints + 1 }.Validate());
        Assert.Equal($"an ODE sampler takes at most {TimeGrid.MaxPoints} time points (num_steps), got {TimeGrid.MaxPoints + 1}.", ode.Message);
        Assert.Equal(TimeGrid.MaxPoints, new SdeSamplerOptions { NumSteps = TimeGrid.MaxPoints }.Validate().NumSteps);
    }
}
