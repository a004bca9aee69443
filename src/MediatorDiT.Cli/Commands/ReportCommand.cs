using System.CommandLine;
using MediatorDiT.Evaluation;

namespace MediatorDiT.Cli.Commands;

/// <summary>
/// `mdit report DIR`: summarises repeated evaluations. DIR holds one folder per configuration, each with
/// seed-&lt;S&gt; folders holding `mdit sample`'s run.json and `mdit eval --json`'s eval.json; prints a Markdown table
/// of every metric as mean ± standard deviation over the seed sets, and can write it, a JSON summary and an
/// FID-against-GFLOPs plot (configurations named curve@point form one line per curve); paired tables against
/// baselines, between two curves' points, and against the straight line between two configurations' costs.
/// </summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var folder = new Argument<string>("DIR") { Description = "results folder: DIR/<configuration>/seed-<S>/{run.json,eval.json}" };
        var configs = new Option<string?>("--configs") { Description = "comma-separated configurations, in table order (default: every folder, alphabetical)" };
        var markdown = new Option<string?>("--markdown") { Description = "also write the table to this file" };
        var json = new Option<string?>("--json") { Description = "also write the summary as JSON" };
        var plot = new Option<string?>("--plot") { Description = "write FID against GFLOPs per image as SVG" };
        var title = new Option<string>("--title") { Description = "the plot's title", DefaultValueFactory = _ => "FID against sampling FLOPs" };
        var baseline = new Option<string[]>("--baseline") { Description = "also a table of every other configuration minus this one, seed set by seed set (paired differences; repeatable, one table each)", AllowMultipleArgumentsPerToken = false };
        var pairCurves = new Option<string[]>("--pair-curves") { Description = "A,B: also a table of A@P minus B@P for every point P on both curves, seed set by seed set (repeatable)", AllowMultipleArgumentsPerToken = false };
        var line = new Option<string[]>("--line") { Description = "A,B: also a table of every configuration costing between A and B minus the straight line from A to B at its GFLOPs, seed set by seed set (repeatable)", AllowMultipleArgumentsPerToken = false };
        var command = new Command("report", "Summarise evaluations over seed sets: mean ± standard deviation per configuration, as a table, JSON and a plot.")
        {
            folder, configs, markdown, json, plot, title, baseline, pairCurves, line,
        };
        command.SetAction((p, token) => CliApp.Guard(() =>
        {
            var names = p.GetValue(configs) is string list ? OptionValues.Split(list) : null;
            string? markdownPath = p.GetValue(markdown) is string m ? CliApp.OutputFile(m, "--markdown") : null;
            string? jsonPath = p.GetValue(json) is string j ? CliApp.OutputFile(j, "--json") : null;
            string? plotPath = p.GetValue(plot) is string s ? CliApp.OutputFile(s, "--plot") : null;
            var summaries = SeedSetSummary.Load(p.GetValue(folder)!, names);
            string table = SeedSetSummary.MarkdownTable(summaries);
            ConfigurationSummary Named(string name, string option) => summaries.FirstOrDefault(c => c.Name == name)
                ?? throw new MediatorDiTException($"{option} '{name}' is not one of the configurations ({string.Join(", ", summaries.Select(c => c.Name))}).");
            foreach (string b in p.GetValue(baseline) ?? [])
            {
                var reference = Named(b, "--baseline");
                table += "\n" + SeedSetSummary.PairedTable(summaries.Where(c => c != reference).Select(c => (c, reference)).ToArray());
            }
            foreach (string pair in p.GetValue(pairCurves) ?? [])
            {
                var curves = OptionValues.Split(pair);
                if (curves.Length != 2) throw new MediatorDiTException($"--pair-curves takes two curve names, A,B; got '{pair}'.");
                table += "\n" + SeedSetSummary.PairedTable(SeedSetSummary.CurvePairs(summaries, curves[0], curves[1]));
            }
            foreach (string ends in p.GetValue(line) ?? [])
            {
                var endNames = OptionValues.Split(ends);
                if (endNames.Length != 2) throw new MediatorDiTException($"--line takes two configurations, A,B; got '{ends}'.");
                table += "\n" + SeedSetSummary.LineTable(summaries, Named(endNames[0], "--line"), Named(endNames[1], "--line"));
            }
            Console.Write(table);
            if (markdownPath is not null) SeedSetSummary.WriteFile(markdownPath, table);
            if (jsonPath is not null) SeedSetSummary.WriteFile(jsonPath, SeedSetSummary.Json(summaries));
            if (plotPath is not null) SeedSetSummary.WriteFile(plotPath, SeedSetSummary.FidPlot(summaries, p.GetValue(title)!));
            return 0;
        }, token));
        return command;
    }
}
