using System.Net;
using System.Net.Sockets;

namespace MediatorDiT.Tests.Cli;

/// <summary>`mdit serve`'s refusals before it listens: one sentence naming the option, exit code 1.</summary>
public class ServeCommandTests
{
    [Fact]
    public void AnUnknownOrMissingDeviceIsRefused()
    {
        var r = CliRunner.Run("serve", "--device", "tpu");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: --device must be cpu, cuda or cuda:N (N = 0, 1, ...), got 'tpu' (see 'mdit serve --help').", r.Stderr.Trim());
        // No CUDA here (CI has none): the sentence names what is missing, before any model is read.
        r = CliRunner.RunWithEnvironment(new Dictionary<string, string> { ["MDIT_CUDA_LIB_DIR"] = CliRunner.TempDir() }, "serve", "--device", "cuda");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("error: --device cuda: no NVIDIA driver (libcuda.so.1)", r.Stderr.Trim());
        Assert.DoesNotContain("mediators", r.Stderr);
    }

    [Fact]
    public void ClassNamesMustMatchTheModel()
    {
        string dir = CliRunner.TempDir();
        string names = Path.Combine(dir, "names.txt");
        File.WriteAllLines(names, ["cat", "dog", "", "bird"]);
        var r = CliRunner.Run("serve", "--class-names", names);
        Assert.Equal(1, r.ExitCode);
        Assert.EndsWith($"error: --class-names {names}: the file names 3 classes, but the model has 10.", r.Stderr.Trim());
        r = CliRunner.Run("serve", "--class-names", Path.Combine(dir, "missing.txt"));
        Assert.Contains("no such file (give fashion-mnist, mnist or a text file with one name per line).", r.Stderr);
    }

    [Fact]
    public void ABusyPortIsNamed()
    {
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        int port = ((IPEndPoint)busy.LocalEndpoint).Port;
        var r = CliRunner.Run("serve", "--port", port.ToString());
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"error: cannot listen on 127.0.0.1:{port} (", r.Stderr);
        Assert.Contains("choose another --port or --host.", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }
}
