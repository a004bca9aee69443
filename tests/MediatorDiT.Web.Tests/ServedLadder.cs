using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using MediatorDiT.Data;
using MediatorDiT.Pipelines;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace MediatorDiT.Web.Tests;

/// <summary>The shipped Fashion-MNIST ladder served in ASP.NET Core's in-process test server.</summary>
internal sealed class ServedLadder : IAsyncDisposable
{
    private static readonly Lazy<DiffusionPipeline> Shipped = new(() => DiffusionPipeline.LoadShippedLadder());

    public static DiffusionPipeline Pipeline => Shipped.Value;

    public static ServerOptions Options { get; } = new() { Port = 0, ClassNames = DatasetClassNames.FashionMnist, MaxImages = 16, MaxSteps = 400 };

    public WebApplication App { get; }
    public HttpClient Client { get; }
    public JobQueue Queue => App.Services.GetRequiredService<JobQueue>();

    private ServedLadder(WebApplication app)
    {
        App = app;
        Client = app.GetTestClient();
    }

    public static async Task<ServedLadder> Start(ServerOptions? options = null)
    {
        var app = ServeApp.Build(Pipeline, options ?? Options, web => web.UseTestServer());
        await app.StartAsync();
        return new ServedLadder(app);
    }

    public Task<HttpResponseMessage> Post(string json, string contentType = "application/json")
    {
        var content = new StringContent(json, Encoding.UTF8);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return Client.PostAsync("/api/jobs", content);
    }

    /// <summary>Posts a job that must be accepted and returns its id.</summary>
    public async Task<string> Submit(string json)
    {
        var response = await Post(json);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Accepted, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    /// <summary>Reads a job's event stream to its end: (event name, data) in order.</summary>
    public async Task<List<(string Name, JsonElement Data)>> Events(string id, CancellationToken token = default)
    {
        using var response = await Client.GetAsync($"/api/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, token);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(token));
        var events = new List<(string, JsonElement)>();
        string? name = null;
        while (await reader.ReadLineAsync(token) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add((name!, JsonDocument.Parse(line[6..]).RootElement.Clone()));
        }
        return events;
    }

    /// <summary>Waits (up to 60 s) until the job reaches <paramref name="state"/>, without touching it as a client would.</summary>
    public async Task WaitFor(string id, JobState state)
    {
        for (int i = 0; i < 600; i++)
        {
            if (Queue.Find(id)?.State == state) return;
            await Task.Delay(100);
        }
        Assert.Fail($"job {id} did not reach {state}; it is {Queue.Find(id)?.State}.");
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
