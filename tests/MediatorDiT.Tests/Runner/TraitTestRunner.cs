using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Runner;

/// <summary>
/// Runs tests of this assembly without a test host: a GPU machine has no .NET SDK, so scripts/gpu-bundle.sh publishes
/// this assembly self-contained and scripts/gpu-tests.sh runs, through <see cref="Program.Main"/>, its `Category=Gpu`
/// tests (<see cref="Discover"/>) and its kernel and product tests on the card (<see cref="DiscoverTwinned"/>, with the
/// card's fixture supplied). xUnit's own runner library is not among the served packages, so this is a small one
/// written here, for what those tests use: facts and theories (a [Fact] or an attribute derived from it, a theory once
/// for each row of its data attributes, every Skip honoured) in classes whose constructor takes an
/// <see cref="ITestOutputHelper"/>, class fixtures (made once per class, disposed after it) or fixtures the caller
/// supplies. Anything else (a theory without data, another constructor argument) is reported as a failure that names
/// it, so a test that this runner cannot run is never passed over in silence.
/// </summary>
public static class TraitTestRunner
{
    /// <summary>What became of one test: passed, failed or skipped, with its time and the failure or skip reason.</summary>
    public sealed record Outcome(string Test, string Status, double Seconds, string? Message, string Output);

    public const string Passed = "passed", Failed = "failed", Skipped = "skipped";

    /// <summary>
    /// The test methods of <paramref name="assembly"/> carrying the trait <paramref name="name"/>=<paramref name="value"/>
    /// on their class or themselves (every method with a [Fact]-derived attribute), in class and declaration order;
    /// only those whose "Class.Method" name contains <paramref name="nameFilter"/> when one is given.
    /// </summary>
    public static IReadOnlyList<MethodInfo> Discover(Assembly assembly, string name, string value, string? nameFilter = null)
    {
        var found = new List<MethodInfo>();
        foreach (var type in assembly.GetTypes().Where(t => t.IsClass && !t.IsAbstract && !t.IsGenericTypeDefinition).OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            bool classHasTrait = HasTrait(type.CustomAttributes, name, value);
            foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly).OrderBy(m => m.MetadataToken))
            {
                if (method.GetCustomAttribute<FactAttribute>() is null) continue;
                if (!classHasTrait && !HasTrait(method.CustomAttributes, name, value)) continue;
                if (nameFilter is not null && !TestName(method).Contains(nameFilter, StringComparison.Ordinal)) continue;
                found.Add(method);
            }
        }
        return found;
    }

    /// <summary>
    /// The test methods of every class that a test class taking only <paramref name="twinFixture"/> derives from: the
    /// kernel and product test classes, each of which has a twin on a CPU accelerator shaped as a CUDA device, so that
    /// they run on any <see cref="Tests.Cuda.Kernels.AcceleratorFixture"/> the caller supplies (a card's). In class and
    /// declaration order; only those whose "Class.Method" name contains <paramref name="nameFilter"/> when one is given.
    /// </summary>
    public static IReadOnlyList<MethodInfo> DiscoverTwinned(Assembly assembly, Type twinFixture, string? nameFilter = null)
    {
        var bases = assembly.GetTypes()
            .Where(t => t.IsClass && !t.IsAbstract && t.GetConstructors() is [var c] && c.GetParameters() is [var p] && p.ParameterType == twinFixture)
            .Select(t => t.BaseType!)
            .Where(b => b != typeof(object) && !b.IsAbstract)
            .Distinct()
            .OrderBy(t => t.FullName, StringComparer.Ordinal);
        return bases.SelectMany(type => type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly).OrderBy(m => m.MetadataToken)
                .Where(m => m.GetCustomAttribute<FactAttribute>() is not null)
                .Where(m => nameFilter is null || TestName(m).Contains(nameFilter, StringComparison.Ordinal)))
            .ToArray();
    }

    /// <summary>"Namespace.Class.Method", as test hosts name a fact.</summary>
    public static string TestName(MethodInfo method) => $"{method.DeclaringType!.FullName}.{method.Name}";

    /// <summary>
    /// Runs <paramref name="tests"/> in order (a theory once per data row), one class at a time (its class fixtures made
    /// before its first test and disposed after its last), writing a line per test to <paramref name="log"/>.
    /// <paramref name="supplied"/> gives constructor arguments by their parameter's type (not disposed here); with
    /// <paramref name="skipReason"/> every test is reported as skipped for it instead of run.
    /// </summary>
    public static IReadOnlyList<Outcome> Run(IReadOnlyList<MethodInfo> tests, TextWriter log, IReadOnlyDictionary<Type, object>? supplied = null,
        string? skipReason = null)
    {
        var outcomes = new List<Outcome>();
        foreach (var group in tests.GroupBy(t => t.DeclaringType!))
        {
            var fixtures = new Dictionary<Type, object>();
            try
            {
                foreach (var test in group)
                foreach (var outcome in RunCases(test, fixtures, supplied, skipReason))
                {
                    outcomes.Add(outcome);
                    log.WriteLine($"{outcome.Status.ToUpperInvariant(),-7} {outcome.Test} ({outcome.Seconds:F1} s)" + (outcome.Message is null ? "" : $": {outcome.Message}"));
                    if (outcome.Status == Failed && outcome.Output.Length > 0) log.WriteLine(outcome.Output.TrimEnd());
                }
            }
            finally
            {
                foreach (var fixture in fixtures.Values.OfType<IDisposable>()) fixture.Dispose();
            }
        }
        return outcomes;
    }

    /// <summary>The outcomes as JSON: what ran (<paramref name="suite"/>), counts, then each test's name, status, seconds, message and output.</summary>
    public static string ToJson(IReadOnlyList<Outcome> outcomes, string suite) => JsonSerializer.Serialize(new
    {
        suite,
        passed = outcomes.Count(o => o.Status == Passed),
        failed = outcomes.Count(o => o.Status == Failed),
        skipped = outcomes.Count(o => o.Status == Skipped),
        tests = outcomes.Select(o => new { test = o.Test, status = o.Status, seconds = Math.Round(o.Seconds, 3), message = o.Message, output = o.Output }),
    }, new JsonSerializerOptions { WriteIndented = true });

    /// <summary>A fact's outcome, or one per row of a theory's data, "Method(name: value, ...)" each.</summary>
    private static IEnumerable<Outcome> RunCases(MethodInfo test, Dictionary<Type, object> fixtures, IReadOnlyDictionary<Type, object>? supplied, string? skipReason)
    {
        string name = TestName(test);
        var fact = test.GetCustomAttribute<FactAttribute>()!;
        if ((fact.Skip ?? skipReason) is string reason)
        {
            yield return new Outcome(name, Skipped, 0, reason, "");
            yield break;
        }
        if (fact is not TheoryAttribute)
        {
            yield return RunOne(test, name, [], fixtures, supplied);
            yield break;
        }
        var rows = new List<(object?[] Arguments, string? Skip)>();
        string? problem = null;
        try
        {
            foreach (var data in test.GetCustomAttributes<Xunit.Sdk.DataAttribute>())
                rows.AddRange(data.GetData(test).Select(row => ((object?[])row, (string?)data.Skip)));
            if (rows.Count == 0) problem = "a theory without data rows";
        }
        catch (Exception e)
        {
            problem = $"its data could not be read: {e.GetType().Name}: {e.Message}";
        }
        if (problem is not null)
        {
            yield return new Outcome(name, Failed, 0, problem, "");
            yield break;
        }
        var parameters = test.GetParameters();
        foreach (var (arguments, skip) in rows)
        {
            string caseName = $"{name}({string.Join(", ", arguments.Select((a, i) => $"{(i < parameters.Length ? parameters[i].Name : "?")}: {Format(a)}"))})";
            yield return skip is not null ? new Outcome(caseName, Skipped, 0, skip, "") : RunOne(test, caseName, arguments, fixtures, supplied);
        }
    }

    private static string Format(object? value) => value switch
    {
        null => "null",
        string text => $"\"{text}\"",
        IFormattable formattable => formattable.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static Outcome RunOne(MethodInfo test, string name, object?[] arguments, Dictionary<Type, object> fixtures, IReadOnlyDictionary<Type, object>? supplied)
    {
        var output = new CapturedOutput();
        var clock = Stopwatch.StartNew();
        try
        {
            if (arguments.Length != test.GetParameters().Length)
                throw new NotSupportedException($"{test.Name} takes {test.GetParameters().Length} arguments and its data gives {arguments.Length}");
            object instance = Construct(test.DeclaringType!, output, fixtures, supplied);
            try
            {
                // The test's own exception, not reflection's wrapper around it.
                var result = test.Invoke(instance, BindingFlags.DoNotWrapExceptions, null, arguments, null);
                if (result is Task task) task.GetAwaiter().GetResult();
            }
            finally
            {
                (instance as IDisposable)?.Dispose();
            }
            return new Outcome(name, Passed, clock.Elapsed.TotalSeconds, null, output.Text);
        }
        catch (Exception e)
        {
            return new Outcome(name, Failed, clock.Elapsed.TotalSeconds, $"{e.GetType().Name}: {e.Message}", output.Text + e.StackTrace);
        }
    }

    private static object Construct(Type type, ITestOutputHelper output, Dictionary<Type, object> fixtures, IReadOnlyDictionary<Type, object>? supplied)
    {
        var constructors = type.GetConstructors();
        if (constructors.Length != 1) throw new NotSupportedException($"{type.Name} has {constructors.Length} public constructors; this runner needs exactly one");
        var classFixtures = type.GetInterfaces().Where(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IClassFixture<>))
            .Select(i => i.GetGenericArguments()[0]).ToHashSet();
        var arguments = constructors[0].GetParameters().Select(p =>
        {
            if (p.ParameterType == typeof(ITestOutputHelper)) return output;
            if (supplied is not null && supplied.TryGetValue(p.ParameterType, out var given)) return given;
            if (classFixtures.Contains(p.ParameterType))
            {
                if (!fixtures.TryGetValue(p.ParameterType, out var fixture)) fixtures[p.ParameterType] = fixture = Activator.CreateInstance(p.ParameterType)!;
                return fixture;
            }
            throw new NotSupportedException($"{type.Name}'s constructor takes {p.ParameterType.Name} {p.Name}, which this runner cannot supply (it supplies ITestOutputHelper, class fixtures and the fixtures it is given)");
        }).ToArray();
        return constructors[0].Invoke(BindingFlags.DoNotWrapExceptions, null, arguments, null);
    }

    private static bool HasTrait(IEnumerable<CustomAttributeData> attributes, string name, string value) =>
        attributes.Any(a => a.AttributeType == typeof(TraitAttribute) && a.ConstructorArguments.Count == 2
                            && Equals(a.ConstructorArguments[0].Value, name) && Equals(a.ConstructorArguments[1].Value, value));

    /// <summary>A test's output lines, kept for its outcome.</summary>
    private sealed class CapturedOutput : ITestOutputHelper
    {
        private readonly System.Text.StringBuilder _text = new();

        public string Text
        {
            get { lock (_text) return _text.ToString(); }
        }

        public void WriteLine(string message)
        {
            lock (_text) _text.AppendLine(message);
        }

        public void WriteLine(string format, params object[] args) => WriteLine(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
    }
}
