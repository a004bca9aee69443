using System.CommandLine;
using MediatorDiT.Evaluation;
using MediatorDiT.Models;

namespace MediatorDiT.Cli.Commands;

/// <summary>`mdit flops`: per-image GFLOPs (one multiply-accumulate = one FLOP) with a breakdown.</summary>
public static class FlopsCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "registered model name, e.g. SiT-S/2, SiT-XL/2, DiT-B/4", DefaultValueFactory = _ => "SiT-S/2" };
        var mediators = new Option<int>("--mediators") { Description = "mediator tokens (a perfect square); 0 = full attention", DefaultValueFactory = _ => 0 }.AtLeast(0);
        var imageSize = new Option<int>("--image-size") { Description = "image size in pixels of a /8 latent (256 -> 32x32 latent)", DefaultValueFactory = _ => 256 };
        var command = new Command("flops", "Count the FLOPs of one forward pass for one image, with a breakdown by component.")
        {
            model, mediators, imageSize,
        };
        command.SetAction((parse, token) => CliApp.Guard(() =>
        {
            var config = ModelRegistry.Get(parse.GetValue(model)!, parse.GetValue(imageSize), parse.GetValue(mediators));
            var report = FlopCounter.Count(config);
            string attention = AttentionKinds.Describe(config);
            Console.WriteLine($"{parse.GetValue(model)} at {parse.GetValue(imageSize)} px ({config.NumTokens} tokens), {attention}");
            Console.WriteLine(report.ToTable());
            return 0;
        }, token));
        return command;
    }
}
