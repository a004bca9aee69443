using System.Reflection;
using System.Text.Json;
using MediatorDiT.Tests.Cli;
using MediatorDiT.Tests.Devices;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Runner;

/// <summary>
/// The runner that scripts/gpu-tests.sh uses on a machine without the .NET SDK, on sample classes of its own trait:
/// they are internal, so xUnit does not run them (it runs public classes only), while the runner finds them by the trait.
/// </summary>
public class TraitTestRunnerTests
{
    private const string Trait = "TraitTestRunnerSample";

    [Fact]
    public void Discover_FindsTheTraitsFacts_OnClassesAndMethods_InDeclarationOrder()
    {
        var names = TraitTestRunner.Discover(typeof(TraitTestRunnerTests).Assembly, "Category", Trait).Select(m => m.Name).ToArray();
        // Classes by full name (SampleMarkedOnTheMethod, SampleWithFixture, Samples), methods as declared.
        Assert.Equal(["MarkedAlone", "UsesTheFixture", "Passes", "Fails", "IsSkipped", "AwaitsItsTask", "IsATheory"], names);
        var filtered = TraitTestRunner.Discover(typeof(TraitTestRunnerTests).Assembly, "Category", Trait, "SampleWithFixture.");
        Assert.Equal(["UsesTheFixture"], filtered.Select(m => m.Name));
    }

    [Fact]
    public void Run_ReportsEachOutcome_WithItsReasonAndOutput_AndDisposesTheFixture()
    {
        SampleFixture.Disposed = 0;
        var log = new StringWriter();
        var outcomes = TraitTestRunner.Run(TraitTestRunner.Discover(typeof(TraitTestRunnerTests).Assembly, "Category", Trait), log)
            .ToDictionary(o => o.Test[(o.Test.LastIndexOf('.') + 1)..]);
        Assert.Equal(TraitTestRunner.Passed, outcomes["Passes"].Status);
        Assert.Equal("written by the test" + Environment.NewLine, outcomes["Passes"].Output);
        Assert.Equal(TraitTestRunner.Failed, outcomes["Fails"].Status);
        Assert.Contains("EqualException", outcomes["Fails"].Message);
        Assert.Equal(TraitTestRunner.Skipped, outcomes["IsSkipped"].Status);
        Assert.Equal("a reason", outcomes["IsSkipped"].Message);
        Assert.Equal(TraitTestRunner.Failed, outcomes["AwaitsItsTask"].Status);
        Assert.Contains("after the await", outcomes["AwaitsItsTask"].Message);
        Assert.Equal(TraitTestRunner.Failed, outcomes["IsATheory"].Status);
        Assert.Contains("needs a test host", outcomes["IsATheory"].Message);
        Assert.Equal(TraitTestRunner.Passed, outcomes["UsesTheFixture"].Status);
        Assert.Equal(TraitTestRunner.Passed, outcomes["MarkedAlone"].Status);
        Assert.Equal(1, SampleFixture.Disposed);
        Assert.Contains("FAILED  MediatorDiT.Tests.Runner.Samples.Fails", log.ToString());

        using var json = JsonDocument.Parse(TraitTestRunner.ToJson(outcomes.Values.ToArray(), "Category=" + Trait));
        Assert.Equal((3, 3, 1), (json.RootElement.GetProperty("passed").GetInt32(), json.RootElement.GetProperty("failed").GetInt32(),
            json.RootElement.GetProperty("skipped").GetInt32()));
    }

    [Fact]
    public void TheGpuTestsAreAllFacts_ThatTheRunnerCanConstruct()
    {
        // Every Category=Gpu test must be runnable by the runner on a GPU machine: a fact in a class it can construct.
        var tests = TraitTestRunner.Discover(typeof(TraitTestRunnerTests).Assembly, "Category", "Gpu");
        Assert.True(tests.Count >= 17, $"only {tests.Count} GPU tests were found");
        foreach (var test in tests)
        {
            Assert.False(test.GetCustomAttribute<FactAttribute>() is TheoryAttribute, $"{test.Name} is a theory");
            Assert.Empty(test.GetParameters());
            var parameters = test.DeclaringType!.GetConstructors().Single().GetParameters();
            Assert.All(parameters, p => Assert.Equal(typeof(ITestOutputHelper), p.ParameterType));
        }
        Assert.Contains(tests, t => t.GetCustomAttribute<GpuFactAttribute>() is not null);
    }

    [Fact]
    public void TheProgram_OnThisMachine_ListsTheGpuTests_AndRefusesAnUnknownOption()
    {
        var stdout = Console.Out;
        var stderr = Console.Error;
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();
            Console.SetOut(output);
            Console.SetError(error);
            Assert.Equal(0, Program.Main(["--list", "--filter", "GpuDeviceTests."]));
            Assert.Equal(["MediatorDiT.Tests.Devices.GpuDeviceTests.TheDriverAndCublasAreFound_AndTheDriverCountsAtLeastOneDevice",
                "MediatorDiT.Tests.Devices.GpuDeviceTests.ADeviceNumberBeyondTheMachinesIsRefused"], output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
            Assert.Equal(2, Program.Main(["--fast"]));
            Assert.Contains("unknown option '--fast'", error.ToString());
            Assert.Equal(1, Program.Main(["--trait", "Category=NoSuchCategory"]));
            Assert.Contains("no test carries the trait Category=NoSuchCategory", error.ToString());
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }
    }

    [Fact]
    public void TheRunnersJson_OfASkippedOrPassingRun_IsWrittenAndExitsZero()
    {
        string dir = CliRunner.TempDir(), json = Path.Combine(dir, "out", "tests.json");
        var stdout = Console.Out;
        try
        {
            Console.SetOut(new StringWriter());
            Assert.Equal(0, Program.Main(["--trait", "Category=" + Trait, "--filter", "SampleWithFixture.", "--json", json]));
        }
        finally
        {
            Console.SetOut(stdout);
        }
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(1, doc.RootElement.GetProperty("passed").GetInt32());
        Assert.Equal("MediatorDiT.Tests.Runner.SampleWithFixture.UsesTheFixture", doc.RootElement.GetProperty("tests")[0].GetProperty("test").GetString());
        Assert.False(File.Exists(json + ".tmp"));
    }
}

// The samples are internal on purpose: xUnit must not run them (some fail by design); the runner finds them by their trait.
#pragma warning disable xUnit1000
[Trait("Category", "TraitTestRunnerSample")]
internal sealed class Samples(ITestOutputHelper output)
{
    [Fact]
    public void Passes() => output.WriteLine("written by the test");

    [Fact]
    public void Fails() => Assert.Equal(1, 2);

    [Fact(Skip = "a reason")]
    public void IsSkipped() => throw new InvalidOperationException("never run");

    [Fact]
    public async Task AwaitsItsTask()
    {
        await Task.Yield();
        throw new InvalidOperationException("after the await");
    }

    [Theory]
    [InlineData(1)]
    public void IsATheory(int value) => Assert.Equal(1, value);

    public void NotATest() => throw new InvalidOperationException("never run");
}

internal sealed class SampleFixture : IDisposable
{
    public static int Disposed;
    public int Uses;

    public void Dispose() => Disposed++;
}

[Trait("Category", "TraitTestRunnerSample")]
internal sealed class SampleWithFixture(SampleFixture fixture) : IClassFixture<SampleFixture>
{
    [Fact]
    public void UsesTheFixture() => Assert.Equal(1, ++fixture.Uses);
}

internal sealed class SampleMarkedOnTheMethod
{
    [Fact]
    [Trait("Category", "TraitTestRunnerSample")]
    public void MarkedAlone() => Assert.Equal("alone", nameof(MarkedAlone)[6..].ToLowerInvariant());

    [Fact]
    public void Unmarked() => throw new InvalidOperationException("not of the trait");
}
#pragma warning restore xUnit1000
