using System.Diagnostics;

namespace MediatorDiT.Tests.Cli;

/// <summary>Runs the real `mdit` binary (built next to the tests, or the executable MDIT_CLI names) as a child process.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args) => RunWithEnvironment(new Dictionary<string, string>(), args);

    /// <summary>Runs mdit with extra environment variables (e.g. npm settings) for the child process.</summary>
    public static Result RunWithEnvironment(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        // MDIT_CLI names an mdit executable to run instead (the self-contained one of scripts/gpu-tests.sh, on a machine without dotnet).
        string? cli = Environment.GetEnvironmentVariable("MDIT_CLI");
        var psi = new ProcessStartInfo(string.IsNullOrEmpty(cli) ? "dotnet" : cli)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        if (string.IsNullOrEmpty(cli)) psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mdit.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"mdit {string.Join(' ', args)} did not finish in 120 s.");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "mdit-tests-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
