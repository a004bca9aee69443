using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using MediatorDiT.Data;
using MediatorDiT.Pipelines;
using MediatorDiT.Web;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace MediatorDiT.Bench;

/// <summary>
/// The load check of `mdit serve`: 20 clients at once, each posting a small job and following its event stream to
/// the end, against a server on a loopback port (started here over the shipped ladder, or a running one given by
/// URL). Every client must end with its job done or refused with the queue-full message; the server must still
/// answer afterwards. Reports the outcomes and latency percentiles.
/// </summary>
public static class ServeLoadBenchmark
{
    private const string Job = """{"images": 2, "steps": 10}""";

    public static async Task<string> Run(string? url, int clients = 20)
    {
        Microsoft.AspNetCore.Builder.WebApplication? app = null;
        if (url is null)
        {
            app = ServeApp.Build(DiffusionPipeline.LoadShippedLadder(), new ServerOptions { Port = 0, ClassNames = DatasetClassNames.FashionMnist });
            await app.StartAsync();
            url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        }
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(10) };
        // One job first, so the measured round sees compiled code and a warm model, not start-up.
        var warm = await Client(http);
        if (warm.Result != "done") return $"mdit serve under load: the warm-up job did not finish ({warm.Result}).";
        var start = new TaskCompletionSource();
        var tasks = Enumerable.Range(0, clients).Select(_ => Task.Run(async () => { await start.Task; return await Client(http); })).ToArray();
        var clock = Stopwatch.StartNew();
        start.SetResult();
        var outcomes = await Task.WhenAll(tasks);
        double wall = clock.Elapsed.TotalSeconds;
        bool alive = (await http.GetAsync("/api/info")).StatusCode == HttpStatusCode.OK;
        if (app is not null) await app.DisposeAsync();

        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        int done = outcomes.Count(o => o.Result == "done"), refused = outcomes.Count(o => o.Result == "refused");
        text.AppendLine(string.Create(inv, $"mdit serve under load: {clients} clients at once, each {Job}, against {url}"));
        text.AppendLine(string.Create(inv, $"  done {done}, refused with the queue-full message {refused}, other {clients - done - refused}; server answers afterwards: {(alive ? "yes" : "NO")}; wall {wall:F2} s"));
        foreach (var other in outcomes.Where(o => o.Result is not ("done" or "refused")))
            text.AppendLine($"  unexpected: {other.Result}");
        text.AppendLine(Percentiles("answer to POST /api/jobs (all)", outcomes.Select(o => o.AnswerSeconds)));
        text.AppendLine(Percentiles("POST to job done (done jobs)", outcomes.Where(o => o.Result == "done").Select(o => o.DoneSeconds)));
        text.Append(done + refused == clients && alive ? "  verdict: pass" : "  verdict: FAIL");
        return text.ToString();
    }

    private sealed record Outcome(string Result, double AnswerSeconds, double DoneSeconds);

    private static async Task<Outcome> Client(HttpClient http)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            using var response = await http.PostAsync("/api/jobs", new StringContent(Job, Encoding.UTF8, "application/json"));
            double answer = clock.Elapsed.TotalSeconds;
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
                return new Outcome(body.GetProperty("error").GetString()!.StartsWith("the queue is full", StringComparison.Ordinal) ? "refused" : $"429 without the queue-full message: {body}", answer, 0);
            if (response.StatusCode != HttpStatusCode.Accepted) return new Outcome($"status {(int)response.StatusCode}: {body}", answer, 0);
            string events = body.GetProperty("events").GetString()!;
            using var stream = await http.GetStreamAsync(events);
            using var reader = new StreamReader(stream);
            string last = "";
            while (await reader.ReadLineAsync() is { } line)
                if (line.StartsWith("event: ", StringComparison.Ordinal)) last = line[7..];
            return new Outcome(last == "done" ? "done" : $"ended {last}", answer, clock.Elapsed.TotalSeconds);
        }
        catch (Exception e)
        {
            return new Outcome($"{e.GetType().Name}: {e.Message}", clock.Elapsed.TotalSeconds, 0);
        }
    }

    private static string Percentiles(string what, IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0) return $"  {what}: none";
        double At(double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        return string.Create(CultureInfo.InvariantCulture,
            $"  {what}: p50 {At(0.5) * 1000:F0} ms, p90 {At(0.9) * 1000:F0} ms, p99 {At(0.99) * 1000:F0} ms, max {sorted[^1] * 1000:F0} ms (n = {sorted.Length})");
    }
}
