using System.Reflection;

namespace MediatorDiT.Tests.Runner;

/// <summary>
/// The entry point of this assembly when it runs as a program rather than under a test host (which never calls it):
/// the tests of one trait through <see cref="TraitTestRunner"/>, for a machine without the .NET SDK.
///   MediatorDiT.Tests [--trait Category=Gpu] [--filter TEXT] [--json PATH] [--list]
/// Exit 0 when every test found passed or was skipped, 1 when one failed or none was found, 2 for bad options.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        string trait = "Category=Gpu";
        string? filter = null, json = null;
        bool list = false;
        for (int i = 0; i < args.Length; i++)
        {
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--trait": trait = Value() ?? ""; break;
                case "--filter": filter = Value(); break;
                case "--json": json = Value(); break;
                case "--list": list = true; break;
                default:
                    Console.Error.WriteLine($"error: unknown option '{args[i]}'; expected --trait NAME=VALUE, --filter TEXT, --json PATH or --list.");
                    return 2;
            }
        }
        int eq = trait.IndexOf('=');
        if (eq <= 0 || eq == trait.Length - 1 || (json ?? "x").Length == 0 || (filter ?? "x").Length == 0)
        {
            Console.Error.WriteLine($"error: --trait takes NAME=VALUE (found '{trait}'), and --filter and --json a value.");
            return 2;
        }
        var tests = TraitTestRunner.Discover(Assembly.GetExecutingAssembly(), trait[..eq], trait[(eq + 1)..], filter);
        if (tests.Count == 0)
        {
            Console.Error.WriteLine($"error: no test carries the trait {trait}" + (filter is null ? "." : $" and contains '{filter}'."));
            return 1;
        }
        if (list)
        {
            foreach (var t in tests) Console.WriteLine(TraitTestRunner.TestName(t));
            return 0;
        }
        Console.WriteLine($"{tests.Count} tests with the trait {trait}");
        var outcomes = TraitTestRunner.Run(tests, Console.Out);
        int failed = outcomes.Count(o => o.Status == TraitTestRunner.Failed);
        Console.WriteLine($"passed {outcomes.Count(o => o.Status == TraitTestRunner.Passed)}, failed {failed}, skipped {outcomes.Count(o => o.Status == TraitTestRunner.Skipped)}");
        if (json is not null)
        {
            string full = Path.GetFullPath(json), temp = full + ".tmp";
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(temp, TraitTestRunner.ToJson(outcomes, trait));
            File.Move(temp, full, overwrite: true);
        }
        return failed == 0 ? 0 : 1;
    }
}
