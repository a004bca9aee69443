// Samples 8 Fashion-MNIST images of chosen classes with the shipped mediator ladder (4, 16, 64 mediators) under the
// step-wise dynamic schedule, saves them as PNGs and prints the FLOPs the schedule saved against the largest model.
//   dotnet run -c Release --project examples/SampleLadder [-- OUT_DIR]
// The ladder is found as `mdit demo` finds it: under $MDIT_MODELS_DIR, else in a models/ folder above the
// executable or the working directory (in the repository, its models/ folder).
using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Pipelines;

string outDir = args.Length > 0 ? args[0] : "example-samples";
Directory.CreateDirectory(outDir);

var pipeline = DiffusionPipeline.LoadShippedLadder();
var result = pipeline.Generate(new GenerationOptions
{
    Labels = [0, 1, 5, 7, 8, 9, 3, 2], // T-shirt, trouser, sandal, sneaker, bag, ankle boot, dress, pullover
    Steps = 50,
    Seed = 1,
});

for (int i = 0; i < result.Images.Dim(0); i++)
    PngEncoder.Write(Path.Combine(outDir, $"{i}-class{result.Record.Images[i].Label}.png"), ImageConversion.ToImage(result.Images, i));

var record = result.Record;
Console.WriteLine($"{record.ImageCount} images in {record.WallSeconds:F1} s -> {outDir}");
Console.WriteLine($"schedule: {record.Schedule}");
Console.WriteLine($"{record.MeanGflopsPerImage:F3} GFLOPs per image against {record.LargestModelGflopsPerImage:F3} for {pipeline.ModelNames[^1]} alone: " +
    $"{100 * record.FlopsSaving:F1}% saved");
return 0;
