using MediatorDiT.Evaluation.Performance;
using System.Diagnostics;
using System.Text;
using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.IO;
using MediatorDiT.Models;
using MediatorDiT.Models.Vae;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Bench;

/// <summary>
/// The ImageNet-scale path with random weights of the released sizes (DiT-XL/2 at 256 px, the SD VAE):
/// <list type="bullet">
/// <item><c>pretrained-memory</c>: writes both as temporary safetensors files, and DiT also as a torch.save
/// zip (.pt, as released), streamed, never whole in memory; then a child process per DiT file loads them
/// through the real path (<see cref="ModelFiles.Load"/>,
/// <see cref="VaeFiles.Load"/>), samples a few guided DDIM steps for one image, decodes it, and reports
/// its peak working set against the weights' size (the budget is weights + 1.5 GiB). A child process,
/// so the writer's memory is not in the figure.</item>
/// <item><c>pretrained-speed</c>: DiT-XL/2 forward at batch 1 and 4 and one VAE decode at 256 px, with
/// achieved GFLOP/s (2 x the counted multiply-accumulates) next to this machine's SGEMM rate measured in
/// the same run.</item>
/// </list>
/// </summary>
public static class PretrainedBenchmark
{
    public const string MemoryMode = "pretrained-memory", SpeedMode = "pretrained-speed", ChildMode = "pretrained-memory-child";
    private const long Budget = 3L << 29; // 1.5 GiB

    public static string Run(string[] args, int threads)
    {
        ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
        int at = Array.IndexOf(args, ChildMode);
        if (at >= 0) return Child(args[at + 1], args[at + 2]);
        return args.Contains(SpeedMode) ? Speed(threads) : Memory(threads);
    }

    private static string Memory(int threads)
    {
        string dir = Directory.CreateTempSubdirectory("mdit-pretrained-").FullName;
        try
        {
            string dit = Path.Combine(dir, "DiT-XL-2-256x256.safetensors"), ditPt = Path.Combine(dir, "DiT-XL-2-256x256.pt");
            string vae = Path.Combine(dir, "sd-vae.safetensors");
            var clock = Stopwatch.StartNew();
            var ditParameters = new SiTModel(ModelRegistry.Get("DiT-XL/2", 256)).Parameters;
            WriteRandom(dit, ditParameters, seed: 1);
            WriteRandomPt(ditPt, ditParameters, seed: 1);
            WriteRandom(vae, new AutoencoderKl(AutoencoderKlConfig.StableDiffusion).Parameters, seed: 2);
            ditParameters = null;
            GC.Collect();
            double written = clock.Elapsed.TotalSeconds;
            var output = new StringBuilder($"wrote random weights in {written:F1} s ({dir})\n");
            foreach (string weights in new[] { dit, ditPt })
                output.Append(RunChild(weights, vae, threads));
            return output.ToString();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string RunChild(string dit, string vae, int threads)
    {
        var (file, prefix) = Environment.ProcessPath is string host && Path.GetFileNameWithoutExtension(host) == "dotnet"
            ? (host, new[] { typeof(PretrainedBenchmark).Assembly.Location })
            : (Environment.ProcessPath!, Array.Empty<string>());
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in prefix) psi.ArgumentList.Add(a);
        foreach (string a in new[] { threads.ToString(), ChildMode, dit, vae }) psi.ArgumentList.Add(a);
        using var child = Process.Start(psi)!;
        string report = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        return $"-- DiT from {Path.GetFileName(dit)}\n{report}" + (child.ExitCode == 0 ? "" : $"child exited with {child.ExitCode}\n");
    }

    /// <summary>Loads through the real path, samples 3 guided DDIM steps for one image, decodes, reports memory.</summary>
    private static string Child(string ditPath, string vaePath)
    {
        var process = Process.GetCurrentProcess();
        long weightBytes = new FileInfo(ditPath).Length + new FileInfo(vaePath).Length;
        var report = new StringBuilder();
        var clock = Stopwatch.StartNew();
        var model = ModelFiles.Load(ditPath);
        model.KeepActivations = false; // as mdit sample does
        var vae = new VaePipeline(VaeFiles.Load(vaePath));
        process.Refresh();
        report.AppendLine($"loaded {model.Config.Family} hidden {model.Config.HiddenSize} depth {model.Config.Depth} and the SD VAE in {clock.Elapsed.TotalSeconds:F1} s; " +
                          $"peak working set after loading {Mib(process.PeakWorkingSet64)} MiB");

        clock.Restart();
        var rng = new RandomSource(3);
        var z = new Tensor(1, 4, 32, 32);
        rng.FillGaussian(z.Span);
        var latents = new DiffusionSampler(GaussianDiffusion.Create("ddim3"), ddim: true).Sample(ModelLadder.FromModel(model, ClassifierFreeGuidance.ForModel(4f, model.Config.InChannels)), z, [207], new GaussianNoiseSource(rng)).Samples;
        double sampling = clock.Elapsed.TotalSeconds;
        process.Refresh();
        long afterSampling = process.PeakWorkingSet64;
        clock.Restart();
        var image = vae.DecodeLatents(latents);
        double decoding = clock.Elapsed.TotalSeconds;
        process.Refresh();
        long peak = process.PeakWorkingSet64;
        bool finite = image.Span.ToArray().All(float.IsFinite);
        report.AppendLine($"peak working set after sampling {Mib(afterSampling)} MiB");
        report.AppendLine($"3 guided DDIM steps (batch 2 through the network) {sampling:F1} s, VAE decode 256 px {decoding:F1} s, image finite: {finite}");
        report.AppendLine($"weights {Mib(weightBytes)} MiB (DiT-XL/2 {Mib(new FileInfo(ditPath).Length)} + VAE {Mib(new FileInfo(vaePath).Length)}), " +
                          $"peak working set {Mib(peak)} MiB = weights + {Mib(peak - weightBytes)} MiB; budget weights + {Mib(Budget)} MiB: {(peak <= weightBytes + Budget ? "within" : "EXCEEDED")}");
        return report.ToString();
    }

    private static string Speed(int threads)
    {
        var report = new StringBuilder();
        // The yardstick is sampled between the timed rounds (one ~0.1 s sample before each), so it sees the
        // machine as the model does; a single measurement at the start caught the tail of the build.
        var sampler = new SgemmRate.Sampler(1024, threads);
        var sgemmTimes = new List<double>();
        void SampleSgemm()
        {
            var sw = Stopwatch.StartNew();
            sampler.Run();
            sgemmTimes.Add(sw.Elapsed.TotalSeconds);
        }
        var lines = new List<(string Text, double Gflops)>();
        var config = ModelRegistry.Get("DiT-XL/2", 256);
        foreach (int batch in new[] { 1, 4 })
        {
            var work = new ModelWorkload(config, batch);
            work.Model.KeepActivations = false; // as mdit sample runs it
            work.Forward(); // warm-up
            var forwardTimes = new double[3];
            for (int r = 0; r < forwardTimes.Length; r++)
            {
                SampleSgemm();
                var sw = System.Diagnostics.Stopwatch.StartNew();
                work.Forward();
                forwardTimes[r] = sw.Elapsed.TotalSeconds;
            }
            Array.Sort(forwardTimes);
            double median = forwardTimes[1], rate = work.ForwardFlops / median / 1e9;
            lines.Add(($"DiT-XL/2 forward 256 px batch {batch}: median {median:F2} s, {batch / median:F2} images/s, {rate:F1} GFLOP/s", rate));
            GC.Collect();
        }

        var vae = new AutoencoderKl(AutoencoderKlConfig.StableDiffusion);
        var rng = new RandomSource(4);
        foreach (var p in vae.Parameters)
        {
            if (p.Value.Rank == 1) p.Value.Span.Fill(p.Name.Contains("norm") && p.Name.EndsWith(".weight") ? 1f : 0f);
            else rng.FillGaussian(p.Value.Span, 0, 1f / MathF.Sqrt(p.Value.Length / p.Value.Dim(0)));
        }
        var latents = new Tensor(1, 4, 32, 32);
        rng.FillGaussian(latents.Span);
        vae.Decode(latents);
        var times = new double[3];
        for (int i = 0; i < times.Length; i++)
        {
            SampleSgemm();
            var sw = Stopwatch.StartNew();
            vae.Decode(latents);
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        double gflops = 2.0 * vae.DecodeMultiplyAccumulates(32, 32) / times[1] / 1e9;
        lines.Add(($"VAE decode 256 px: median {times[1]:F2} s, {gflops:F1} GFLOP/s (convolutions and attention)", gflops));
        sgemmTimes.Sort();
        double sgemm = sampler.Flops / sgemmTimes[sgemmTimes.Count / 2] / 1e9;
        report.AppendLine($"threads {threads}, GEMM backend {Gemm.Backend}, SGEMM 1024^3 {sgemm:F1} GFLOP/s (median of {sgemmTimes.Count} samples between the rounds)");
        foreach (var (text, rate) in lines) report.AppendLine($"{text} = {rate / sgemm:P0} of SGEMM");
        return report.ToString();
    }

    /// <summary>Writes the parameters' names and shapes with N(0, 0.02^2) values made per tensor while writing (norm scales 1).</summary>
    private static void WriteRandom(string path, IEnumerable<Nn.Parameter> parameters, ulong seed)
    {
        var tensors = new Dictionary<string, StoredTensor>();
        ulong k = 0;
        foreach (var p in parameters)
        {
            ulong tensorSeed = seed * 1_000_003 + k++;
            int[] shape = p.Value.Shape;
            bool scale = p.Value.Rank == 1 && p.Name.Contains("norm") && p.Name.EndsWith(".weight");
            tensors[p.Name] = new StoredTensor(DType.F32, shape, new RereadBytes(() =>
            {
                var values = new float[StoredTensor.CountElements(shape)];
                if (scale) values.AsSpan().Fill(1f);
                else new RandomSource(tensorSeed).FillGaussian(values, 0, 0.02f);
                return StoredTensor.FromFloat(values, shape).Bytes;
            }));
        }
        SafeTensors.Write(path, tensors);
    }

    /// <summary>
    /// The same values as <see cref="WriteRandom"/> in torch.save's zip layout (a bare state dict, one
    /// FloatStorage record per tensor, stored uncompressed), written tensor by tensor.
    /// </summary>
    private static void WriteRandomPt(string path, IReadOnlyList<Nn.Parameter> parameters, ulong seed)
    {
        var pickle = new Tests.IO.PickleBuilder().Proto(2).Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark();
        for (int i = 0; i < parameters.Count; i++)
        {
            int[] shape = parameters[i].Value.Shape;
            var stride = new long[shape.Length];
            for (long axis = shape.Length - 1, step = 1; axis >= 0; step *= shape[axis], axis--) stride[axis] = step;
            pickle.Str(parameters[i].Name).Tensor("FloatStorage", i.ToString(), parameters[i].Value.Length, 0, [.. shape.Select(d => (long)d)], stride);
        }
        pickle.SetItems().Stop();
        using var zip = new System.IO.Compression.ZipArchive(File.Create(path), System.IO.Compression.ZipArchiveMode.Create);
        void Add(string name, ReadOnlySpan<byte> bytes)
        {
            using Stream stream = zip.CreateEntry("archive/" + name, System.IO.Compression.CompressionLevel.NoCompression).Open();
            stream.Write(bytes);
        }
        Add("data.pkl", pickle.ToArray());
        ulong k = 0;
        foreach (var p in parameters)
        {
            var values = new float[p.Value.Length];
            if (p.Value.Rank == 1 && p.Name.Contains("norm") && p.Name.EndsWith(".weight")) values.AsSpan().Fill(1f);
            else new RandomSource(seed * 1_000_003 + k).FillGaussian(values, 0, 0.02f);
            Add($"data/{k++}", System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        }
        Add("version", "3\n"u8);
    }

    private static long Mib(long bytes) => bytes >> 20;
}
