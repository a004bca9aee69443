using System.CommandLine;
using System.Runtime.InteropServices;
using MediatorDiT.Cli.Commands;

namespace MediatorDiT.Cli;

/// <summary>The `mdit` command tree. Each command lives in its own file under Commands/.</summary>
public static class CliApp
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
            DemoCommand.Create(),
            RedundancyCommand.Create(),
            VaeCommand.Create(),
            EncodeLatentsCommand.Create(),
            TrainClassifierCommand.Create(),
            EvalCommand.Create(),
            SearchThresholdsCommand.Create(),
            BenchCommand.Create(),
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
        var root = BuildRoot();
        return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, stop.Token);
    }

    /// <summary>
    /// Runs a command body, turning the project's input errors (and file-system errors) into one line on
    /// stderr and exit code 1, cancellation into 130, so users never see a stack trace for bad input.
    /// </summary>
    public static async Task<int> Guard(Func<CancellationToken, Task<int>> body, CancellationToken token)
    {
        try
        {
            return await body(token);
        }
        catch (MediatorDiTException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("cancelled.");
            return 130;
        }
    }

    /// <summary>
    /// Output paths named on the command line may point into folders that do not exist yet (out/x.safetensors):
    /// create the folder, as users expect of a command line; the library writers themselves refuse.
    /// </summary>
    public static string OutputFile(string path)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) IO.OutputFolder.EnsureWritable(dir, "output folder");
        return path;
    }

    public static Task<int> Guard(Func<int> body, CancellationToken token) => Guard(_ => Task.FromResult(body()), token);
}
