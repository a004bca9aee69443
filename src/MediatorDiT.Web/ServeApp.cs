using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using MediatorDiT.Pipelines;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MediatorDiT.Web;

/// <summary>
/// The web application of `mdit serve`: one page (<c>GET /</c>) and a JSON API over a <see cref="DiffusionPipeline"/>
/// (docs/SERVE.md). Every error is JSON <c>{"error": sentence, "field": name-or-null}</c> with a 4xx status; only a
/// bug in the server gives a 500.
/// </summary>
public static class ServeApp
{
    private const string Page = "page/";

    /// <summary>
    /// Builds the application (not started). <paramref name="configure"/> may change the web host, e.g. swap
    /// Kestrel for ASP.NET Core's test server.
    /// </summary>
    public static WebApplication Build(DiffusionPipeline pipeline, ServerOptions options, Action<IWebHostBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        options = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "mdit-serve" });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxBodyBytes);
        configure?.Invoke(builder.WebHost);
        var model = ServedModel.Of(pipeline, options);
        var queue = new JobQueue(pipeline, options, model);
        builder.Services.AddSingleton(queue);
        var app = builder.Build();
        app.Lifetime.ApplicationStopping.Register(queue.Dispose);

        // Refusals travel as RequestRejectedException and leave as JSON with their status (404s included).
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            AllowStatusCode404Response = true,
            ExceptionHandler = async context =>
            {
                var failure = context.Features.Get<IExceptionHandlerFeature>()?.Error;
                if (failure is RequestRejectedException rejected)
                {
                    await Reply(context, rejected);
                    return;
                }
                if (failure is BadHttpRequestException bad)
                {
                    await Reply(context, new RequestRejectedException(bad.StatusCode, null, bad.StatusCode == 413
                        ? $"the request body is larger than the {options.MaxBodyBytes} bytes this server accepts."
                        : $"the request could not be read ({bad.Message.TrimEnd('.')})."));
                    return;
                }
                Console.Error.WriteLine($"mdit serve: {context.Request.Method} {context.Request.Path} failed: {failure}");
                await Reply(context, new RequestRejectedException(500, null, "the server failed on this request (its console says why)."));
            },
        });

        app.MapGet("/", () => Asset("index.html", "text/html; charset=utf-8"));
        app.MapGet("/app.js", () => Asset("app.js", "text/javascript; charset=utf-8"));
        app.MapGet("/app.css", () => Asset("app.css", "text/css; charset=utf-8"));

        app.MapGet("/api/info", () => Results.Json(model, JobQueue.Json));

        app.MapGet("/api/queue", () =>
        {
            var (running, waiting) = queue.Snapshot();
            return Results.Json(new { running = running is not null, waiting, maxQueue = options.MaxQueue }, JobQueue.Json);
        });

        app.MapPost("/api/jobs", async (HttpContext context) =>
        {
            if (context.Request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
                throw new RequestRejectedException(415, null, $"a job is a JSON body (Content-Type: application/json), got {(context.Request.ContentType is null ? "no content type" : context.Request.ContentType)}.");
            byte[] body = await ReadBody(context.Request, options.MaxBodyBytes, context.RequestAborted);
            var request = JobRequest.Parse(body, model);
            CheckAgainstPipeline(pipeline, request, options);
            var job = queue.Submit(request);
            return Results.Json(Status(queue, job), JobQueue.Json, statusCode: 202);
        });

        app.MapGet("/api/jobs/{id}", (string id) =>
        {
            var job = Find(queue, id);
            job.Seen(DateTime.UtcNow);
            return Results.Json(Status(queue, job), JobQueue.Json);
        });

        app.MapDelete("/api/jobs/{id}", (string id) =>
        {
            var job = Find(queue, id);
            if (!queue.Cancel(job, "cancelled by its client."))
                throw new RequestRejectedException(409, null, $"job {id} is {Names.Of(job.State)} already; there is nothing to cancel.");
            return Results.Json(Status(queue, job), JobQueue.Json, statusCode: 202);
        });

        app.MapGet("/api/jobs/{id}/events", (string id, HttpContext context) => StreamEvents(Find(queue, id), context));

        app.MapGet("/api/jobs/{id}/record.json", (string id) =>
        {
            var job = Find(queue, id);
            job.Seen(DateTime.UtcNow);
            if (job.State != JobState.Done)
                throw new RequestRejectedException(409, null, $"job {id} is {Names.Of(job.State)}; its record is ready when it is done.");
            return new DownloadResult(Results.Text(queue.Record(job).ToJsonString(JobQueue.Json), "application/json", Encoding.UTF8), $"mdit-{id}.json");
        });

        app.MapGet("/api/jobs/{id}/runs/{run}/images/{file}", (string id, string run, string file) =>
        {
            var job = Find(queue, id);
            job.Seen(DateTime.UtcNow);
            var found = job.Run(run) ?? throw new RequestRejectedException(404, null,
                $"job {id} has no run \"{run}\"; it has {string.Join(", ", job.Runs.Select(r => r.Name))}.");
            if (!file.EndsWith(".png", StringComparison.Ordinal) || !int.TryParse(file.AsSpan(0, file.Length - 4), System.Globalization.NumberStyles.None, null, out int index)
                || index >= found.Images.Length)
                throw new RequestRejectedException(404, null, $"run \"{run}\" of job {id} has images 0.png to {found.Images.Length - 1}.png, not {file}.");
            var png = found.Images[index] ?? throw new RequestRejectedException(409, null, $"image {index} of run \"{run}\" is not made yet.");
            return Results.File(png, "image/png", $"mdit-{id}-{run}-{index}.png");
        });

        return app;
    }

    /// <summary>The address the server listens on, as the CLI prints it.</summary>
    public static string Describe(ServerOptions options, string url) => options.IsLoopback
        ? $"listening on {url} (this machine only; --host 0.0.0.0 serves other machines too)"
        : $"listening on {url} (reachable from other machines: anyone who can reach this port can generate images)";

    private static GenerationJob Find(JobQueue queue, string id) => queue.Find(id)
        ?? throw new RequestRejectedException(404, null, $"there is no job \"{(id.Length > 32 ? id[..32] + "..." : id)}\" (finished jobs are kept a while, then forgotten).");

    /// <summary>The pipeline's own checks (the schedule against the ladder, the sampler against the steps), as 400s.</summary>
    private static void CheckAgainstPipeline(DiffusionPipeline pipeline, JobRequest request, ServerOptions options)
    {
        try
        {
            var generation = request.ToOptions(options.PreviewEvery).Validate();
            pipeline.CreateSchedule(generation);
            pipeline.CreateSampler(generation);
        }
        catch (MediatorDiTException e)
        {
            throw new RequestRejectedException(400, "schedule", e.Message);
        }
    }

    private static JsonObject Status(JobQueue queue, GenerationJob job)
    {
        var status = new JsonObject
        {
            ["id"] = job.Id,
            ["state"] = Names.Of(job.State),
            ["position"] = job.Position,
            ["events"] = $"/api/jobs/{job.Id}/events",
        };
        if (job.Error is not null) status["error"] = job.Error;
        if (job.Progress() is { } progress) status["progress"] = progress;
        if (job.State == JobState.Done)
        {
            status["record"] = $"/api/jobs/{job.Id}/record.json";
            status["wallSeconds"] = job.WallSeconds;
            status["runs"] = new JsonArray(job.Runs.Select(r => (JsonNode)queue.Result(job, r)).ToArray());
        }
        return status;
    }

    /// <summary>
    /// Server-sent events: the job's whole story so far (from Last-Event-ID on, when reconnecting), then each new
    /// event, until the job ends or the client leaves. While open, the stream keeps the job alive.
    /// </summary>
    private static async Task StreamEvents(GenerationJob job, HttpContext context)
    {
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
        long next = long.TryParse(context.Request.Headers["Last-Event-ID"], out long last) ? last + 1 : 0;
        var token = context.RequestAborted;
        job.Watch(true, DateTime.UtcNow);
        try
        {
            await context.Response.StartAsync(token);
            while (!token.IsCancellationRequested)
            {
                var (events, finished, changed) = job.EventsFrom(next);
                var text = new StringBuilder();
                foreach (var (sequence, name, json) in events)
                {
                    text.Append("id: ").Append(sequence).Append("\nevent: ").Append(name).Append("\ndata: ").Append(json).Append("\n\n");
                    next = sequence + 1;
                }
                if (text.Length > 0)
                {
                    await context.Response.WriteAsync(text.ToString(), token);
                    await context.Response.Body.FlushAsync(token);
                }
                if (finished) break;
                // Wake on the next event, or every 15 s for a comment line that finds a vanished client.
                await Task.WhenAny(changed, Task.Delay(TimeSpan.FromSeconds(15), token));
                if (!changed.IsCompleted && !token.IsCancellationRequested)
                {
                    await context.Response.WriteAsync(": keep-alive\n\n", token);
                    await context.Response.Body.FlushAsync(token);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The client left.
        }
        catch (IOException)
        {
            // The client left mid-write.
        }
        finally
        {
            job.Watch(false, DateTime.UtcNow);
        }
    }

    private static async Task<byte[]> ReadBody(HttpRequest request, int limit, CancellationToken token)
    {
        if (request.ContentLength > limit)
            throw new RequestRejectedException(413, null, $"the request body is {request.ContentLength} bytes, more than the {limit} bytes this server accepts.");
        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, token)) > 0)
        {
            if (buffer.Length + read > limit)
                throw new RequestRejectedException(413, null, $"the request body is more than the {limit} bytes this server accepts.");
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static Task Reply(HttpContext context, RequestRejectedException rejected)
    {
        context.Response.StatusCode = rejected.Status;
        return context.Response.WriteAsJsonAsync(new { error = rejected.Message, field = rejected.Field }, JobQueue.Json);
    }

    private static IResult Asset(string name, string contentType)
    {
        using var stream = typeof(ServeApp).Assembly.GetManifestResourceStream(Page + name)
            ?? throw new InvalidOperationException($"the page asset {name} is missing from the assembly.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Results.Bytes(copy.ToArray(), contentType);
    }

    /// <summary>A JSON answer the browser saves as a file.</summary>
    private sealed class DownloadResult(IResult inner, string fileName) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.ContentDisposition = $"attachment; filename=\"{fileName}\"";
            return inner.ExecuteAsync(httpContext);
        }
    }
}
