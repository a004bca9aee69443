using System.Diagnostics;
using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Tensors;
using MediatorDiT.Training;

namespace MediatorDiT.Tests.Training.Distributed;

/// <summary>
/// `mpiexec -n 2 mdit train` on one machine, one thread per rank (MPICH from scripts/setup.sh): the weights equal
/// one process's bit for bit (and with 4 ranks), a run resumes with the other number of ranks, and a killed or hung rank ends the
/// run within 60 s with a clear message. Also torchrun-style variables (TCP) with a killed rank.
/// </summary>
public class MpiTrainingTests
{
    private sealed record Run(int ExitCode, string Output, TimeSpan Elapsed);

    private static string Mdit => Path.Combine(AppContext.BaseDirectory, "mdit.dll");

    private static string Mpiexec()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, "mpiexec"))) return Path.Combine(dir, "mpiexec");
        Assert.Fail("mpiexec is not installed; scripts/setup.sh installs Debian's mpich.");
        return "";
    }

    /// <summary>A folder with 32 random 4x16x16 latents in 2 classes and a tiny run config (hidden 32, depth 1, batch 8).</summary>
    private static (string Dir, string Config) Setup(long steps, long ckptEvery = 10)
    {
        string dir = Path.Combine(Path.GetTempPath(), "mdit-mpi-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var latents = new Tensor(32, 4, 16, 16);
        new RandomSource(7).FillGaussian(latents.Span, 0, 0.5f);
        string data = Path.Combine(dir, "latents.safetensors");
        LatentDataset.Save(data, StoredTensor.FromFloat(latents), Enumerable.Range(0, 32).Select(i => (long)(i % 2)).ToArray(), 2);
        string config = Path.Combine(dir, "run.json");
        File.WriteAllText(config, $$"""
            { "model": "custom", "model_config": {"hidden_size": 32, "depth": 1, "num_heads": 2, "patch_size": 2, "learn_sigma": false},
              "mediators": [4], "dataset": "latents:{{data}}", "batch_size": 8, "lr": 0.001, "ema_decay": 0.9, "class_dropout": 0.25,
              "steps": {{steps}}, "ckpt_every": {{ckptEvery}}, "log_every": 1, "seed": 5 }
            """);
        return (dir, config);
    }

    private static ProcessStartInfo Start(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // A launcher's variables around the test run must not leak into the ranks.
        foreach (string name in new[] { "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "PMI_RANK", "PMI_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "JOB_COMPLETION_INDEX" })
            psi.Environment.Remove(name);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return psi;
    }

    private static string[] TrainArgs(string config, string run, bool resume) =>
        [Mdit, "train", "--config", config, resume ? "--resume" : "--out", run, "--threads", "1", "--no-progress"];

    private static Run Execute(ProcessStartInfo psi, Action<Process>? during = null)
    {
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        during?.Invoke(p);
        if (!p.WaitForExit(180_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{psi.FileName} {string.Join(' ', psi.ArgumentList)} did not end in 180 s.");
        }
        p.WaitForExit();
        return new Run(p.ExitCode, stdout.Result + stderr.Result, clock.Elapsed);
    }

    private static Run Single(string config, string run, bool resume = false) => Execute(Start("dotnet", TrainArgs(config, run, resume)));

    private static Run TwoRanks(string config, string run, bool resume = false, IReadOnlyDictionary<string, string>? env = null, Action<Process>? during = null,
        int ranks = 2) =>
        Execute(Start(Mpiexec(), ["-n", ranks.ToString(), "dotnet", .. TrainArgs(config, run, resume)], env), during);

    private static void AssertOk(Run run, string what) => Assert.True(run.ExitCode == 0, $"{what} exited with {run.ExitCode}: {run.Output}");

    private static void AssertSameBytes(string expected, string actual)
    {
        Assert.True(File.Exists(actual), $"{actual} is missing");
        Assert.True(File.ReadAllBytes(expected).AsSpan().SequenceEqual(File.ReadAllBytes(actual)), $"{actual} differs from {expected}");
    }

    [Fact]
    public void TwoMpiRanksEqualOneProcessAndResumeWithTheOtherCount()
    {
        if (!OperatingSystem.IsLinux()) return;
        var (dir, config) = Setup(20);
        string halfConfig = Path.Combine(dir, "half.json");
        File.WriteAllText(halfConfig, File.ReadAllText(config).Replace("\"steps\": 20,", "\"steps\": 10,", StringComparison.Ordinal));
        string one = Path.Combine(dir, "one"), two = Path.Combine(dir, "two"), twoOne = Path.Combine(dir, "two-one"), oneTwo = Path.Combine(dir, "one-two");
        AssertOk(Single(config, one), "one process");
        var twoRun = TwoRanks(config, two);
        AssertOk(twoRun, "mpiexec -n 2");
        Assert.Contains("2 ranks over MPI (MPICH", twoRun.Output);
        Assert.Single(twoRun.Output.Split('\n'), l => l.StartsWith("trained to step 20", StringComparison.Ordinal));
        foreach (string file in new[] { "checkpoints/0000010.safetensors", "checkpoints/0000020.safetensors", "ema.safetensors" })
            AssertSameBytes(Path.Combine(one, file), Path.Combine(two, file));
        // 4 ranks: the running sum passes through ranks that both receive and send it.
        string four = Path.Combine(dir, "four");
        AssertOk(TwoRanks(config, four, ranks: 4), "mpiexec -n 4");
        AssertSameBytes(Path.Combine(one, "checkpoints/0000020.safetensors"), Path.Combine(four, "checkpoints/0000020.safetensors"));

        void AssertSteps(Run r, string what, int last)
        {
            AssertOk(r, what);
            Assert.Contains($"trained to step {last} ", r.Output);
        }
        AssertSteps(TwoRanks(halfConfig, twoOne), "mpiexec -n 2, 10 steps", 10);
        AssertSteps(Single(config, twoOne, resume: true), "one process resuming the 2-rank run", 20);
        AssertSteps(Single(halfConfig, oneTwo), "one process, 10 steps", 10);
        var resumed = TwoRanks(config, oneTwo, resume: true);
        AssertSteps(resumed, "mpiexec -n 2 resuming the 1-process run", 20);
        Assert.Contains("at step 10 on 2 ranks", resumed.Output);
        foreach (string run in new[] { twoOne, oneTwo })
        {
            AssertSameBytes(Path.Combine(one, "checkpoints/0000020.safetensors"), Path.Combine(run, "checkpoints/0000020.safetensors"));
            Assert.Equal(File.ReadAllLines(Path.Combine(one, "metrics.jsonl")).Length, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length);
        }
    }

    /// <summary>Rank <paramref name="rank"/>'s process of the run writing <paramref name="run"/> (found by its command line and PMI_RANK).</summary>
    private static int? RankProcess(string run, int rank, string variable = "PMI_RANK")
    {
        foreach (string proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out int pid)) continue;
            try
            {
                if (!File.ReadAllText(Path.Combine(proc, "cmdline")).Contains(run, StringComparison.Ordinal)) continue;
                if (File.ReadAllText(Path.Combine(proc, "environ")).Split('\0').Contains($"{variable}={rank}")) return pid;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return null;
    }

    /// <summary>Waits until the run has logged a step, then sends <paramref name="signal"/> to rank 1 and times the rest.</summary>
    private static Action<Process> SignalRankOneAfterAStep(string run, string signal, Stopwatch sinceSignal, string variable = "PMI_RANK") => launcher =>
    {
        string metrics = Path.Combine(run, "metrics.jsonl");
        var waited = Stopwatch.StartNew();
        while (!(File.Exists(metrics) && new FileInfo(metrics).Length > 0) && !launcher.HasExited && waited.Elapsed.TotalSeconds < 120) Thread.Sleep(100);
        Assert.False(launcher.HasExited, "the run ended before its first step");
        int pid = RankProcess(run, 1, variable) ?? throw new InvalidOperationException("rank 1's process was not found");
        using (var kill = Process.Start("kill", [$"-{signal}", pid.ToString()])) kill.WaitForExit();
        sinceSignal.Start();
    };

    [Fact]
    public void AKilledRankEndsTheRunWithin60Seconds()
    {
        if (!OperatingSystem.IsLinux()) return;
        var (dir, config) = Setup(1_000_000, ckptEvery: 1_000_000);
        string run = Path.Combine(dir, "killed");
        var sinceKill = new Stopwatch();
        var result = TwoRanks(config, run, during: SignalRankOneAfterAStep(run, "KILL", sinceKill));
        Assert.True(sinceKill.Elapsed < TimeSpan.FromSeconds(60), $"the run went on for {sinceKill.Elapsed.TotalSeconds:F0} s after rank 1 was killed");
        Assert.NotEqual(0, result.ExitCode);
        // MPICH's mpiexec ends the job at once with its report of a process that ended badly. It usually names the
        // killed rank ("Killed (signal 9)"); once, in a CI run under load, its report did not name the signal (rank 0,
        // failing on the lost peer, may reach mpiexec first), so the test holds the report, not the signal.
        Assert.True(result.Output.Contains("BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES", StringComparison.Ordinal), result.Output);
    }

    [Fact]
    public void AHungRankIsFoundByTheHeartbeat()
    {
        if (!OperatingSystem.IsLinux()) return;
        var (dir, config) = Setup(1_000_000, ckptEvery: 1_000_000);
        string run = Path.Combine(dir, "hung");
        var sinceStop = new Stopwatch();
        var result = TwoRanks(config, run, env: new Dictionary<string, string> { ["MDIT_RANK_TIMEOUT"] = "5" }, during: SignalRankOneAfterAStep(run, "STOP", sinceStop));
        Assert.True(sinceStop.Elapsed < TimeSpan.FromSeconds(60), $"the run went on for {sinceStop.Elapsed.TotalSeconds:F0} s after rank 1 hung");
        // Rank 0 aborts the job with exit code 1 and mpiexec then kills the stopped rank; which of the two exit
        // statuses mpiexec returns is a race (CI under load saw 9, the kill's signal), so only "not 0" is held.
        Assert.True(result.ExitCode != 0, result.Output);
        Assert.Contains("error: rank 0: a rank of the 2 stopped answering for 5 s (it ended or hangs); rank 0 stops without a checkpoint.", result.Output);
    }

    /// <summary>
    /// Two ranks joined over torchrun-style variables (TCP); after rank 0 logs a step, rank 1 gets
    /// <paramref name="signal"/>. Returns rank 0's one error line, after checking it came within 60 s and exit 1.
    /// </summary>
    private static string TcpRankZeroErrorAfterSignal(string name, string signal, Dictionary<string, string>? extraEnv = null)
    {
        var (dir, config) = Setup(1_000_000, ckptEvery: 1_000_000);
        string run = Path.Combine(dir, name);
        int port = 20000 + Random.Shared.Next(20000);
        Dictionary<string, string> Env(int rank)
        {
            var env = new Dictionary<string, string>
            {
                ["RANK"] = rank.ToString(), ["WORLD_SIZE"] = "2", ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = port.ToString(),
            };
            foreach (var (k, v) in extraEnv ?? []) env[k] = v;
            return env;
        }
        using var rank1 = Process.Start(Start("dotnet", TrainArgs(config, run, false), Env(1)))!;
        _ = rank1.StandardOutput.ReadToEndAsync();
        _ = rank1.StandardError.ReadToEndAsync();
        var sinceSignal = new Stopwatch();
        try
        {
            var result = Execute(Start("dotnet", TrainArgs(config, run, false), Env(0)), SignalRankOneAfterAStep(run, signal, sinceSignal, "RANK"));
            Assert.True(sinceSignal.Elapsed < TimeSpan.FromSeconds(60), $"rank 0 went on for {sinceSignal.Elapsed.TotalSeconds:F0} s after rank 1 got SIG{signal}");
            Assert.Equal(1, result.ExitCode);
            var errors = result.Output.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToArray();
            Assert.Single(errors);
            return errors[0].TrimEnd();
        }
        finally
        {
            if (!rank1.HasExited) rank1.Kill();
        }
    }

    [Fact]
    public void AKilledTcpRankEndsTheOtherWithOneSentence()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.StartsWith("error: rank 0: rank 1 ended or lost its connection", TcpRankZeroErrorAfterSignal("tcp", "KILL"));
    }

    [Fact]
    public void AHungTcpRankIsFoundByTheHeartbeat()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.Equal("error: rank 0: rank 1 stopped answering for 5 s (it hangs, or its machine went away); rank 0 stops without a checkpoint.",
            TcpRankZeroErrorAfterSignal("tcp-hung", "STOP", new() { ["MDIT_RANK_TIMEOUT"] = "5" }));
    }
}
