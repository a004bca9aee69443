using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;
using System.Runtime.InteropServices;
using MediatorDiT.Cli.Commands;
using MediatorDiT.Tensors;

namespace MediatorDiT.Cli;

/// <summary>The `mdit` command tree. Each command lives in its own file under Commands/.</summary>
public static partial class CliApp
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("mdit: diffusion transformers with step-wise dynamic attention mediators.")
        {
            FlopsCommand.Create(),
            ForwardCommand.Create(),
            ConvertCommand.Create(),
            ExportCommand.Create(),
            TrainCommand.Create(),
            SampleCommand.Create(),
            JoinSamplesCommand.Create(),
            ReportCommand.Create(),
            DemoCommand.Create(),
            RedundancyCommand.Create(),
            VaeCommand.Create(),
            EncodeLatentsCommand.Create(),
            TrainClassifierCommand.Create(),
            EvalCommand.Create(),
            SearchThresholdsCommand.Create(),
            BenchCommand.Create(),
            ServeCommand.Create(),
        };
        return root;
    }

    /// <summary>
    /// Ctrl+C and SIGTERM cancel the command's token; a long command then finishes its step and writes what it
    /// must (a training checkpoint) before exiting with 130. The signals are handled here rather than by
    /// System.CommandLine, whose handler ends the process 2 s after the signal, cutting off the checkpoint of
    /// a slow step. A second signal ends the process at once.
    /// </summary>
    public static async Task<int> RunAsync(string[] args)
    {
        using var stop = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = !stop.IsCancellationRequested;
            stop.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        try
        {
            var parse = BuildRoot().Parse(args);
            // A bare `mdit` still shows the help with its error.
            if (parse.Action is ParseErrorAction && args.Length > 0)
            {
                await Console.Error.WriteLineAsync($"error: {ParseErrorLine(parse)}");
                return 1;
            }
            // A misspelt backend would otherwise run silently on the default one.
            if (Environment.GetEnvironmentVariable(ComputeContext.GemmVariable) is string gemm && ComputeContext.GemmBackendNamed(gemm) is null)
            {
                await Console.Error.WriteLineAsync(
                    $"error: {ComputeContext.GemmVariable}='{gemm}' names no matrix-product backend; set it to managed, openblas, reference or auto, or unset it.");
                return 1;
            }
            return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false }, stop.Token);
        }
        catch (Exception e)
        {
            // Anything that escaped a command's Guard (parsing, option defaults): still one line, never a stack trace.
            return await Report(e);
        }
    }

    /// <summary>
    /// System.CommandLine's parse errors as one line (instead of the errors followed by the whole help text):
    /// its messages, conversion failures reworded to say what the option expects, and where the help is.
    /// </summary>
    internal static string ParseErrorLine(ParseResult parse)
    {
        var messages = parse.Errors.Select(e => Reword(e.Message)).Distinct().ToList();
        var names = new List<string>();
        for (SymbolResult? r = parse.CommandResult; r is CommandResult c; r = c.Parent)
            if (c.Parent is not null) names.Insert(0, c.Command.Name);
        string command = string.Join(' ', ["mdit", .. names]);
        return $"{string.Join(" ", messages).TrimEnd('.')} (see '{command} --help').";
    }

    private static string Reword(string message)
    {
        message = OneLine(message);
        var m = CannotParse().Match(message);
        if (!m.Success) return message;
        string expected = m.Groups["type"].Value switch
        {
            var t when t.Contains("System.Int32") => $"a whole number (at most {int.MaxValue})",
            var t when t.Contains("System.Int64") => "a whole number",
            var t when t.Contains("System.UInt64") => "a whole number of 0 or more",
            var t when t.Contains("System.Single") || t.Contains("System.Double") => "a number",
            var t when t.Contains("System.Boolean") => "true or false",
            _ => null,
        } ?? m.Groups["type"].Value;
        return $"{m.Groups["option"].Value} expects {expected}, got '{m.Groups["value"].Value}'.";
    }

    [GeneratedRegex("^Cannot parse argument '(?<value>.*)' for option '(?<option>[^']+)' as expected type '(?<type>[^']+)'\\.$")]
    private static partial Regex CannotParse();

    /// <summary>
    /// Runs a command body, turning the project's input errors (and file-system errors) into one line on
    /// stderr and exit code 1, cancellation into 130, and any other exception into one line too (see
    /// <see cref="ErrorLine"/>), so users never see a stack trace.
    /// </summary>
    public static async Task<int> Guard(Func<CancellationToken, Task<int>> body, CancellationToken token)
    {
        try
        {
            return await body(token);
        }
        catch (Exception e)
        {
            return await Report(e);
        }
    }

    /// <summary>
    /// The safety net for exceptions the command did not expect: one line and exit code 1 (130 for a
    /// cancellation). An input error wrapped by a parallel loop gets its own sentence; running out of
    /// memory is the machine's limit, not a bug; anything else is an internal error worth reporting.
    /// </summary>
    internal static async Task<int> Report(Exception e)
    {
        var (line, exitCode) = ErrorLine(e);
        await Console.Error.WriteLineAsync(line);
        return exitCode;
    }

    /// <summary>The one line <see cref="Report"/> prints for <paramref name="e"/>, and the exit code.</summary>
    internal static (string Line, int ExitCode) ErrorLine(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && e.InnerException is not null)
            e = e.InnerException!;
        string message = OneLine(e.Message);
        return e switch
        {
            OperationCanceledException => ("cancelled.", 130),
            MediatorDiTException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException => ($"error: {message}", 1),
            OutOfMemoryException or InsufficientExecutionStackException =>
                ($"error: not enough memory ({message.TrimEnd('.')}); use a smaller --batch-size, fewer or smaller images, or a smaller model.", 1),
            _ => ($"error: {message.TrimEnd('.')} ({e.GetType().Name}; internal error, please report it with the command line that caused it).", 1),
        };
    }

    private static string OneLine(string text) =>
        string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>
    /// Output paths named on the command line may point into folders that do not exist yet (out/x.safetensors):
    /// create the folder, as users expect of a command line; the library writers themselves refuse. A path
    /// that is a folder, or an existing file that cannot be written, is refused here, before any work.
    /// </summary>
    /// <param name="option">the option that named the path, for the message</param>
    public static string OutputFile(string path, string? option = null)
    {
        string named = option is null ? $"'{path}'" : $"{option} '{path}'";
        if (Directory.Exists(path)) throw new MediatorDiTException($"{named} is a folder, but a file to write was expected.");
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) IO.OutputFolder.EnsureWritable(dir, "output folder");
        if (File.Exists(path))
        {
            try
            {
                using var _ = new FileStream(path, FileMode.Open, FileAccess.Write);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new MediatorDiTException($"{named} cannot be written ({e.Message.TrimEnd('.')}).");
            }
        }
        return path;
    }

    public static Task<int> Guard(Func<int> body, CancellationToken token) => Guard(_ => Task.FromResult(body()), token);
}
