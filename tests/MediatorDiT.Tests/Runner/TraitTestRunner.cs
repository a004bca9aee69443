using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using Xunit.Abstractions;

namespace MediatorDiT.Tests.Runner;

/// <summary>
/// Runs the tests of one trait (Category=Gpu by default) of this assembly without a test host: a GPU machine has no
/// .NET SDK, so scripts/gpu-bundle.sh publishes this assembly self-contained and scripts/gpu-tests.sh runs its
/// `Category=Gpu` tests through <see cref="Program.Main"/>. xUnit's own runner library is not among the served
/// packages, so this is a small one written here, for what those tests use: facts (a [Fact] or an attribute derived
/// from it, its Skip honoured) in classes constructed without arguments, with an <see cref="ITestOutputHelper"/>, or
/// with class fixtures (made once per class, disposed after it). Anything else (a theory, another constructor
/// argument) is reported as a failure that names it, so a test that this runner cannot run is never passed over in
/// silence.
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

    /// <summary>"Namespace.Class.Method", as test hosts name a fact.</summary>
    public static string TestName(MethodInfo method) => $"{method.DeclaringType!.FullName}.{method.Name}";

    /// <summary>
    /// Runs <paramref name="tests"/> in order, one class at a time (its fixtures made before its first test and disposed
    /// after its last), writing a line per test to <paramref name="log"/>.
    /// </summary>
    public static IReadOnlyList<Outcome> Run(IReadOnlyList<MethodInfo> tests, TextWriter log)
    {
        var outcomes = new List<Outcome>();
        foreach (var group in tests.GroupBy(t => t.DeclaringType!))
        {
            var fixtures = new Dictionary<Type, object>();
            try
            {
                foreach (var test in group)
                {
                    var outcome = RunOne(test, fixtures);
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

    /// <summary>The outcomes as JSON: counts, then each test's name, status, seconds, message and output.</summary>
    public static string ToJson(IReadOnlyList<Outcome> outcomes, string trait) => JsonSerializer.Serialize(new
    {
        trait,
        passed = outcomes.Count(o => o.Status == Passed),
        failed = outcomes.Count(o => o.Status == Failed),
        skipped = outcomes.Count(o => o.Status == Skipped),
        tests = outcomes.Select(o => new { test = o.Test, status = o.Status, seconds = Math.Round(o.Seconds, 3), message = o.Message, output = o.Output }),
    }, new JsonSerializerOptions { WriteIndented = true });

    private static Outcome RunOne(MethodInfo test, Dictionary<Type, object> fixtures)
    {
        string name = TestName(test);
        var fact = test.GetCustomAttribute<FactAttribute>()!;
        if (fact.Skip is string reason) return new Outcome(name, Skipped, 0, reason, "");
        var output = new CapturedOutput();
        var clock = Stopwatch.StartNew();
        try
        {
            if (fact is TheoryAttribute || test.GetParameters().Length > 0)
                throw new NotSupportedException("a theory or a test with parameters needs a test host (dotnet test); this runner runs facts only");
            object instance = Construct(test.DeclaringType!, output, fixtures);
            try
            {
                // The test's own exception, not reflection's wrapper around it.
                var result = test.Invoke(instance, BindingFlags.DoNotWrapExceptions, null, null, null);
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

    private static object Construct(Type type, ITestOutputHelper output, Dictionary<Type, object> fixtures)
    {
        var constructors = type.GetConstructors();
        if (constructors.Length != 1) throw new NotSupportedException($"{type.Name} has {constructors.Length} public constructors; this runner needs exactly one");
        var classFixtures = type.GetInterfaces().Where(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IClassFixture<>))
            .Select(i => i.GetGenericArguments()[0]).ToHashSet();
        var arguments = constructors[0].GetParameters().Select(p =>
        {
            if (p.ParameterType == typeof(ITestOutputHelper)) return output;
            if (classFixtures.Contains(p.ParameterType))
            {
                if (!fixtures.TryGetValue(p.ParameterType, out var fixture)) fixtures[p.ParameterType] = fixture = Activator.CreateInstance(p.ParameterType)!;
                return fixture;
            }
            throw new NotSupportedException($"{type.Name}'s constructor takes {p.ParameterType.Name} {p.Name}, which this runner cannot supply (it supplies ITestOutputHelper and class fixtures)");
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
