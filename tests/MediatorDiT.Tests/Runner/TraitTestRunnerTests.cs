using System.Reflection;
using System.Text.Json;
using MediatorDiT.Tests.Cli;
using MediatorDiT.Tests.Cuda.Kernels;
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
        Assert.Equal(["MarkedAlone", "UsesTheFixture", "Passes", "Fails", "IsSkipped", "AwaitsItsTask", "IsATheory", "IsATheoryWithoutData"], names);
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
        // A theory runs once per data row, named by its arguments; a row's own Skip is honoured.
        Assert.Equal(TraitTestRunner.Passed, outcomes["IsATheory(value: 1, label: \"one\")"].Status);
        Assert.Equal(TraitTestRunner.Failed, outcomes["IsATheory(value: 2, label: \"one\")"].Status);
        Assert.Contains("value 2 (one)", outcomes["IsATheory(value: 2, label: \"one\")"].Message);
        Assert.Equal(TraitTestRunner.Skipped, outcomes["IsATheory(value: 3, label: \"three\")"].Status);
        Assert.Equal("a row's reason", outcomes["IsATheory(value: 3, label: \"three\")"].Message);
        Assert.Equal(TraitTestRunner.Passed, outcomes["IsATheory(value: 1, label: null)"].Status); // from a member
        Assert.Equal(TraitTestRunner.Failed, outcomes["IsATheoryWithoutData"].Status);
        Assert.Equal("a theory without data rows", outcomes["IsATheoryWithoutData"].Message);
        Assert.Equal(TraitTestRunner.Passed, outcomes["UsesTheFixture"].Status);
        Assert.Equal(TraitTestRunner.Passed, outcomes["MarkedAlone"].Status);
        Assert.Equal(1, SampleFixture.Disposed);
        Assert.Contains("FAILED  MediatorDiT.Tests.Runner.Samples.Fails", log.ToString());

        using var json = JsonDocument.Parse(TraitTestRunner.ToJson(outcomes.Values.ToArray(), "Category=" + Trait));
        Assert.Equal((5, 4, 2), (json.RootElement.GetProperty("passed").GetInt32(), json.RootElement.GetProperty("failed").GetInt32(),
            json.RootElement.GetProperty("skipped").GetInt32()));
        Assert.Equal("Category=" + Trait, json.RootElement.GetProperty("suite").GetString());
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
            Assert.Contains("found none of the tests with the trait Category=NoSuchCategory.", error.ToString());
            Assert.Equal(2, Program.Main(["--kernels-on-card", "--trait", "Category=Gpu"]));
            Assert.Contains("give one of --trait and --kernels-on-card", error.ToString());
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
    [Fact]
    public void DiscoverTwinned_FindsTheKernelAndProductTests_ThatHaveATwinOnCudaShapedWarps()
    {
        var tests = TraitTestRunner.DiscoverTwinned(typeof(TraitTestRunnerTests).Assembly, typeof(CudaShapedAcceleratorFixture));
        var classes = tests.Select(t => t.DeclaringType!).Distinct().ToArray();
        // Each class is a twin's base: constructed from the fixture alone, so the runner can give it a card's.
        Assert.All(classes, c => Assert.Equal([typeof(AcceleratorFixture)], c.GetConstructors().Single().GetParameters().Select(p => p.ParameterType)));
        Assert.Contains(typeof(RowKernelsTests), classes);
        Assert.Contains(typeof(Tests.Cuda.Models.AttentionProductsTests), classes);
        Assert.Contains(typeof(Tests.Cuda.Vae.VaeKernelsTests), classes);
        Assert.DoesNotContain(typeof(RowKernelsOnCudaWarpsTests), classes);
        Assert.DoesNotContain(typeof(PtxCompilationTests), classes); // no twin: it compiles for a GPU without running
        // Every twin's base is there, and every test method of each.
        var twins = typeof(TraitTestRunnerTests).Assembly.GetTypes().Where(t => t.GetConstructors() is [var c]
            && c.GetParameters() is [var p] && p.ParameterType == typeof(CudaShapedAcceleratorFixture)).ToArray();
        Assert.Equal(twins.Length, classes.Length);
        Assert.Equal(classes.Sum(c => c.GetMethods().Count(m => m.GetCustomAttribute<FactAttribute>() is not null)), tests.Count);
        Assert.Equal(["AdaLayerNormForward_MatchesTheCpuKernel", "SoftmaxForward_MatchesTheCpuKernel"],
            TraitTestRunner.DiscoverTwinned(typeof(TraitTestRunnerTests).Assembly, typeof(CudaShapedAcceleratorFixture), "Tests.Cuda.Kernels.RowKernelsTests.")
                .Select(m => m.Name));
    }

    [Fact]
    public void KernelTests_RunThroughTheRunner_OnASuppliedFixture_ComparedAsOnACard()
    {
        // What scripts/gpu-tests.sh --kernels does on a card, here on a CPU accelerator shaped as a CUDA device whose
        // comparisons are the card's (bounded where the CPU gives the same bits): every theory row runs and passes.
        var tests = TraitTestRunner.DiscoverTwinned(typeof(TraitTestRunnerTests).Assembly, typeof(CudaShapedAcceleratorFixture), "Tests.Cuda.Kernels.RowKernelsTests.")
            .Concat(TraitTestRunner.DiscoverTwinned(typeof(TraitTestRunnerTests).Assembly, typeof(CudaShapedAcceleratorFixture), "ElementKernelsTests."))
            .ToArray();
        using var fixture = new CardComparisonsOnCpuFixture();
        var outcomes = TraitTestRunner.Run(tests, new StringWriter(), new Dictionary<Type, object> { [typeof(AcceleratorFixture)] = fixture });
        Assert.All(outcomes, o => Assert.True(o.Status == TraitTestRunner.Passed, $"{o.Test}: {o.Status} {o.Message}"));
        int rows = tests.Sum(t => t.GetCustomAttributes<Xunit.Sdk.DataAttribute>().Sum(d => d.GetData(t).Count()) is var n && n > 0 ? n : 1);
        Assert.Equal(rows, outcomes.Count);
        Assert.Contains(outcomes, o => o.Test.EndsWith("AdaLayerNormForward_MatchesTheCpuKernel(d: 37, rowsPerImage: 4, images: 1)", StringComparison.Ordinal));
    }

    [Fact]
    public void TheProgram_RunsTheKernelTestsOnTheCard_OrReportsThemSkipped_WithTheReason()
    {
        string? missing = CardAcceleratorFixture.Missing();
        string dir = CliRunner.TempDir(), json = Path.Combine(dir, "kernels.json");
        var stdout = Console.Out;
        try
        {
            Console.SetOut(new StringWriter());
            Assert.Equal(0, Program.Main(["--kernels-on-card", "--filter", "Tests.Cuda.Kernels.RowKernelsTests.", "--json", json]));
        }
        finally
        {
            Console.SetOut(stdout);
        }
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var counts = (doc.RootElement.GetProperty("passed").GetInt32(), doc.RootElement.GetProperty("failed").GetInt32(), doc.RootElement.GetProperty("skipped").GetInt32());
        string suite = doc.RootElement.GetProperty("suite").GetString()!;
        if (missing is null)
        {
            // On a GPU machine: the five rows of RowKernelsTests ran on the card.
            Assert.StartsWith("the kernel and product tests on cuda:0 (", suite);
            Assert.Equal((5, 0, 0), counts);
            return;
        }
        Assert.Equal("the kernel and product tests on cuda:0", suite);
        Assert.Equal((0, 0, 2), counts); // without a card each method is skipped once, its rows unread
        Assert.Equal($"needs a CUDA device: {missing}.", doc.RootElement.GetProperty("tests")[0].GetProperty("message").GetString());
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

    public static IEnumerable<object?[]> Rows => [[1, null]];

    [Theory]
    [InlineData(1, "one")]
    [InlineData(2, "one")]
    [InlineData(3, "three", Skip = "a row's reason")]
    [MemberData(nameof(Rows))]
    public void IsATheory(int value, string? label) => Assert.True(value == 1, $"value {value} ({label ?? "no label"})");

#pragma warning disable xUnit1003 // the runner's report of it is what is tested
    [Theory]
    public void IsATheoryWithoutData(int value) => Assert.Equal(1, value);
#pragma warning restore xUnit1003

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
