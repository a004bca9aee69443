using System.CommandLine;
using MediatorDiT.Evaluation;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit join-samples DIR`: joins the samples-rank&lt;r&gt;.npz files that the ranks of a sharded `mdit sample --npz`
/// wrote into DIR/samples.npz in global image order (labels in arr_1 when every run-rank&lt;r&gt;.json is there), the
/// one batch the ADM evaluation suite reads.
/// </summary>
public static class JoinSamplesCommand
{
    public static Command Create()
    {
        var folder = new Argument<string>("DIR") { Description = "the folder the ranks wrote samples-rank<r>.npz to" };
        var output = new Option<string?>("--out") { Description = "joined file (default DIR/samples.npz)" };
        var command = new Command("join-samples", "Join the ranks' samples-rank<r>.npz of a sharded `mdit sample --npz` into one samples.npz.")
        {
            folder, output,
        };
        var limitOptions = new InputLimitOptions(command, arrays: true);
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            string dir = p.GetValue(folder)!;
            var files = RankSamples.Find(dir);
            string outPath = CliApp.OutputFile(p.GetValue(output) ?? Path.Combine(dir, "samples.npz"));
            var joined = RankSamples.Join(files, outPath, limitOptions.Read(p));
            Console.WriteLine($"{joined.Images} images of {joined.Ranks} ranks{(joined.Labels ? " with their labels (arr_1)" : "")} -> {joined.Path}");
            return 0;
        }, token));
        return command;
    }
}
