using System.CommandLine;

namespace MediatorDiT.Cli;

/// <summary>The `mdit` command tree. Each command lives in its own file under Commands/.</summary>
public static class CliApp
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("mdit: diffusion transformers with step-wise dynamic attention mediators.");
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var root = BuildRoot();
        return await root.Parse(args).InvokeAsync();
    }
}
