using System.Reflection;
using MediatorDiT.Tests.Cuda.Kernels;

namespace MediatorDiT.Tests.Runner;

/// <summary>
/// The entry point of this assembly when it runs as a program rather than under a test host (which never calls it):
/// the tests of one trait, or the kernel and product tests on cuda:0, through <see cref="TraitTestRunner"/>, for a
/// machine without the .NET SDK.
///   MediatorDiT.Tests [--trait Category=Gpu | --kernels-on-card] [--filter TEXT] [--json PATH] [--list]
/// Exit 0 when every test found passed or was skipped, 1 when one failed or none was found, 2 for bad options.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        string? trait = null, filter = null, json = null;
        bool list = false, onCard = false;
        for (int i = 0; i < args.Length; i++)
        {
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--trait": trait = Value() ?? ""; break;
                case "--kernels-on-card": onCard = true; break;
                case "--filter": filter = Value(); break;
                case "--json": json = Value(); break;
                case "--list": list = true; break;
                default:
                    Console.Error.WriteLine($"error: unknown option '{args[i]}'; expected --trait NAME=VALUE, --kernels-on-card, --filter TEXT, --json PATH or --list.");
                    return 2;
            }
        }
        if (onCard && trait is not null)
        {
            Console.Error.WriteLine("error: --kernels-on-card runs the kernel and product tests, not a trait's; give one of --trait and --kernels-on-card.");
            return 2;
        }
        trait ??= "Category=Gpu";
        int eq = trait.IndexOf('=');
        if (eq <= 0 || eq == trait.Length - 1 || (json ?? "x").Length == 0 || (filter ?? "x").Length == 0)
        {
            Console.Error.WriteLine($"error: --trait takes NAME=VALUE (found '{trait}'), and --filter and --json a value.");
            return 2;
        }
        var assembly = Assembly.GetExecutingAssembly();
        var tests = onCard
            ? TraitTestRunner.DiscoverTwinned(assembly, typeof(CudaShapedAcceleratorFixture), filter)
            : TraitTestRunner.Discover(assembly, trait[..eq], trait[(eq + 1)..], filter);
        string suite = onCard ? "the kernel and product tests on cuda:0" : $"the tests with the trait {trait}";
        if (tests.Count == 0)
        {
            Console.Error.WriteLine($"error: found none of {suite}" + (filter is null ? "." : $" whose name contains '{filter}'."));
            return 1;
        }
        if (list)
        {
            foreach (var t in tests) Console.WriteLine(TraitTestRunner.TestName(t));
            return 0;
        }
        Console.WriteLine($"{tests.Count} test methods: {suite}");
        IReadOnlyList<TraitTestRunner.Outcome> outcomes;
        try
        {
            outcomes = onCard ? RunOnCard(tests, ref suite) : TraitTestRunner.Run(tests, Console.Out);
        }
        catch (MediatorDiTException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        int failed = outcomes.Count(o => o.Status == TraitTestRunner.Failed);
        Console.WriteLine($"passed {outcomes.Count(o => o.Status == TraitTestRunner.Passed)}, failed {failed}, skipped {outcomes.Count(o => o.Status == TraitTestRunner.Skipped)}");
        if (json is not null)
        {
            string full = Path.GetFullPath(json), temp = full + ".tmp";
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(temp, TraitTestRunner.ToJson(outcomes, suite));
            File.Move(temp, full, overwrite: true);
        }
        return failed == 0 ? 0 : 1;
    }

    /// <summary>The tests on cuda:0's fixture, or all skipped with the reason where no card can be opened.</summary>
    private static IReadOnlyList<TraitTestRunner.Outcome> RunOnCard(IReadOnlyList<MethodInfo> tests, ref string suite)
    {
        if (CardAcceleratorFixture.Missing() is string missing)
            return TraitTestRunner.Run(tests, Console.Out, skipReason: $"needs a CUDA device: {missing}.");
        using var card = CardAcceleratorFixture.Open();
        suite = $"the kernel and product tests on {card.Name}";
        Console.WriteLine(suite);
        return TraitTestRunner.Run(tests, Console.Out, new Dictionary<Type, object> { [typeof(AcceleratorFixture)] = card });
    }
}
