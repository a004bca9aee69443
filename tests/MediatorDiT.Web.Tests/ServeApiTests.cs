using System.Net;
using System.Text.Json;
using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Pipelines;

namespace MediatorDiT.Web.Tests;

/// <summary>Every endpoint of `mdit serve`'s JSON API, in the in-process test server over the shipped ladder.</summary>
public class ServeApiTests
{
    [Fact]
    public async Task InfoDescribesTheServedLadderAndItsLimits()
    {
        await using var server = await ServedLadder.Start();
        var info = JsonDocument.Parse(await server.Client.GetStringAsync("/api/info")).RootElement;
        Assert.Equal(["m4", "m16", "m64"], info.GetProperty("models").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal([4, 16, 64], info.GetProperty("mediators").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(DatasetClassNames.FashionMnist, info.GetProperty("classes").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(32, info.GetProperty("imageSize").GetInt32());
        Assert.Equal("SiT", info.GetProperty("family").GetString());
        // The ladder's schedule.json, not the generic defaults.
        var stored = ServedLadder.Pipeline.StoredSchedule!;
        Assert.Equal(stored.Ratios, info.GetProperty("defaultRatios").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(stored.First, info.GetProperty("defaultFirst").GetInt32());
        Assert.Equal("fashion-mnist-ladder/schedule.json", info.GetProperty("scheduleSource").GetString());
        Assert.Equal(16, info.GetProperty("limits").GetProperty("maxImages").GetInt32());
        Assert.Equal(400, info.GetProperty("limits").GetProperty("maxSteps").GetInt32());
        Assert.Equal(50, info.GetProperty("defaultSteps").GetInt32());
    }

    [Fact]
    public async Task ThePageAndItsAssetsAreServed()
    {
        await using var server = await ServedLadder.Start();
        var page = await server.Client.GetAsync("/");
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<script src=\"/app.js\"></script>", await page.Content.ReadAsStringAsync());
        Assert.Contains("new EventSource", await server.Client.GetStringAsync("/app.js"));
        Assert.Contains(".strip", await server.Client.GetStringAsync("/app.css"));
        var missing = await server.Client.GetAsync("/etc/passwd");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task AJobStreamsStepsPreviewsAndResultsThatMatchThePipeline()
    {
        await using var server = await ServedLadder.Start();
        string id = await server.Submit("""{"classes": ["Trouser", "Bag"], "images": 2, "steps": 6, "seed": 5, "compare": true, "schedule": {"kind": "switch", "at": [0.5, 0.5]}}""");
        var events = await server.Events(id);
        var names = events.Select(e => e.Name).ToList();
        Assert.Equal("running", names.First(n => n != "queued"));
        Assert.Equal("done", names[^1]);
        Assert.Equal(2, names.Count(n => n == "result"));

        // The switch schedule: m4 (model 0) for steps 1-3, m64 (model 2) from step 4, for both images.
        var steps = events.Where(e => e.Name == "step" && e.Data.GetProperty("run").GetString() == "dynamic").Select(e => e.Data).ToList();
        Assert.Equal([1, 2, 3, 4, 5, 6], steps.Select(s => s.GetProperty("step").GetInt32()));
        Assert.All(steps, s => Assert.Equal([0, 1], s.GetProperty("indices").EnumerateArray().Select(e => e.GetInt32())));
        Assert.Equal([0, 0, 0, 2, 2, 2], steps.Select(s => s.GetProperty("models")[1].GetInt32()));
        // A live client sees a step's images if it reads that step before the next one replaces them (a slow reader
        // may miss some; which, depends on timing), and always the last step's; a late client only the newest of
        // each batch (the log stays small).
        Assert.All(steps.Where(s => s.TryGetProperty("previews", out _)), s => Assert.Equal(2, s.GetProperty("previews").GetArrayLength()));
        Assert.True(steps[^1].TryGetProperty("previews", out _));
        var replay = (await server.Events(id)).Where(e => e.Name == "step" && e.Data.GetProperty("run").GetString() == "dynamic").ToList();
        Assert.Equal([6], replay.Where(e => e.Data.TryGetProperty("previews", out _)).Select(e => e.Data.GetProperty("step").GetInt32()));
        var largest = events.Where(e => e.Name == "step" && e.Data.GetProperty("run").GetString() == "largest").Select(e => e.Data).ToList();
        Assert.All(largest, s => Assert.Equal(2, s.GetProperty("models")[0].GetInt32()));

        // The images are the pipeline's own for the same options, and the last preview is the final image.
        var expected = ServedLadder.Pipeline.Generate(new GenerationOptions
        {
            Labels = [1, 8], NumImages = 2, Steps = 6, Seed = 5, Schedule = new ScheduleChoice.Fixed([0.5, 0.5]),
        });
        for (int k = 0; k < 2; k++)
        {
            byte[] png = await server.Client.GetByteArrayAsync($"/api/jobs/{id}/runs/dynamic/images/{k}.png");
            Assert.Equal(PngEncoder.Encode(ImageConversion.ToImage(expected.Images, k)), png);
            string preview = steps[^1].GetProperty("previews")[k].GetString()!;
            Assert.Equal("data:image/png;base64," + Convert.ToBase64String(png), preview);
        }

        var result = events.First(e => e.Name == "result").Data;
        Assert.Equal(expected.Record.MeanGflopsPerImage, result.GetProperty("meanGflopsPerImage").GetDouble(), 9);
        Assert.Equal(expected.Record.LargestModelGflopsPerImage, result.GetProperty("largestModelGflopsPerImage").GetDouble(), 9);
        Assert.Equal("Bag", result.GetProperty("images")[1].GetProperty("class").GetString());
        Assert.Equal([0, -1, 3], result.GetProperty("images")[0].GetProperty("firstStepOfModel").EnumerateArray().Select(e => e.GetInt32()));
        var largestResult = events.Last(e => e.Name == "result").Data;
        Assert.Equal("m64 alone", largestResult.GetProperty("title").GetString());
        Assert.Equal(0, largestResult.GetProperty("flopsSaving").GetDouble(), 12);

        var status = JsonDocument.Parse(await server.Client.GetStringAsync($"/api/jobs/{id}")).RootElement;
        Assert.Equal("done", status.GetProperty("state").GetString());
        Assert.Equal(2, status.GetProperty("runs").GetArrayLength());
        var progress = status.GetProperty("progress");
        Assert.Equal(("largest", 6, 6, 0, 2), (progress.GetProperty("run").GetString(), progress.GetProperty("step").GetInt32(),
            progress.GetProperty("stepCount").GetInt32(), progress.GetProperty("imagesDone").GetInt32(), progress.GetProperty("images").GetInt32()));

        var record = await server.Client.GetAsync($"/api/jobs/{id}/record.json");
        Assert.Equal("attachment", record.Content.Headers.ContentDisposition?.DispositionType);
        var json = JsonDocument.Parse(await record.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(["Trouser", "Bag"], json.GetProperty("request").GetProperty("classes").EnumerateArray().Select(e => e.GetString()));
        var dynamicRecord = json.GetProperty("runs")[0].GetProperty("record");
        Assert.Equal("sde euler 6", dynamicRecord.GetProperty("sampler").GetString());
        Assert.Equal(expected.Record.MeanGflopsPerImage, dynamicRecord.GetProperty("meanGflopsPerImage").GetDouble(), 9);
    }

    [Theory]
    [InlineData("not json", null, "not valid JSON")]
    [InlineData("[1, 2]", null, "must be a JSON object, found an array")]
    [InlineData("""{"colour": 1}""", "colour", "unknown field \"colour\"")]
    [InlineData("""{"classes": []}""", "classes", "non-empty array")]
    [InlineData("""{"classes": ["Hat"]}""", "classes", "\"Hat\" is not a class of this model")]
    [InlineData("""{"classes": [10]}""", "classes", "class 10 is not one of 0..9")]
    [InlineData("""{"classes": [true]}""", "classes", "found a boolean")]
    [InlineData("""{"images": 0}""", "images", "from 1 to 16")]
    [InlineData("""{"images": 17}""", "images", "from 1 to 16")]
    [InlineData("""{"images": 2.5}""", "images", "must be a whole number")]
    [InlineData("""{"steps": 1}""", "steps", "from 2 to 400")]
    [InlineData("""{"steps": 100000}""", "steps", "from 2 to 400")]
    [InlineData("""{"steps": "ten"}""", "steps", "must be a whole number, got \"ten\"")]
    [InlineData("""{"guidance": 0.5}""", "guidance", "from 1 (none) to 20")]
    [InlineData("""{"guidance": 1e300}""", "guidance", "from 1 (none) to 20")]
    [InlineData("""{"seed": -1}""", "seed", "whole number from 0")]
    [InlineData("""{"seed": 1.5}""", "seed", "whole number from 0")]
    [InlineData("""{"schedule": "dynamic"}""", "schedule", "must be an object")]
    [InlineData("""{"schedule": {"kind": "magic"}}""", "schedule.kind", "\"dynamic\", \"single\" or \"switch\"")]
    [InlineData("""{"schedule": {"kind": "dynamic", "ratio": [0.5, 0.2]}}""", "schedule.ratio", "unknown field \"schedule.ratio\"")]
    [InlineData("""{"schedule": {"kind": "dynamic", "ratios": [0.5]}}""", "schedule.ratios", "array of 2 numbers")]
    [InlineData("""{"schedule": {"kind": "dynamic", "ratios": [0.5, 1.5]}}""", "schedule.ratios", "in [0, 1], got 1.5")]
    [InlineData("""{"schedule": {"kind": "dynamic", "ratios": [0.2, 0.5]}}""", "schedule.ratios", "must not increase")]
    [InlineData("""{"steps": 10, "schedule": {"kind": "dynamic", "first": 10}}""", "schedule.first", "from 1 to 9")]
    [InlineData("""{"schedule": {"kind": "single", "mediators": 8}}""", "schedule.mediators", "one of the ladder's counts 4, 16, 64")]
    [InlineData("""{"schedule": {"kind": "switch"}}""", "schedule.at", "needs \"at\"")]
    [InlineData("""{"schedule": {"kind": "switch", "at": [0.7, 0.3]}}""", "schedule.at", "must not decrease")]
    [InlineData("""{"compare": "yes"}""", "compare", "true or false")]
    public async Task ABadValueIsA400NamingTheField(string body, string? field, string message)
    {
        await using var server = await ServedLadder.Start();
        var response = await server.Post(body);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Contains(message, error.GetProperty("error").GetString());
        if (field is null) Assert.Equal(JsonValueKind.Null, error.GetProperty("field").ValueKind);
        else Assert.Equal(field, error.GetProperty("field").GetString());
        Assert.Equal((null, 0), server.Queue.Snapshot());
    }

    [Fact]
    public async Task TheWrongMediaTypeTooLargeABodyAndUnknownThingsAreClear4xx()
    {
        await using var server = await ServedLadder.Start();
        async Task<(HttpStatusCode, string)> Answer(HttpResponseMessage r) =>
            (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString()!);

        var (status, error) = await Answer(await server.Post("{}", "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
        Assert.Contains("Content-Type: application/json", error);

        (status, error) = await Answer(await server.Post("{\"classes\": [\"" + new string('x', 20_000) + "\"]}"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("16384 bytes", error);

        (status, error) = await Answer(await server.Client.GetAsync("/api/jobs/0123456789abcdef"));
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("there is no job \"0123456789abcdef\"", error);

        string slow = await server.Submit("""{"images": 16, "steps": 400}""");
        (status, error) = await Answer(await server.Client.GetAsync($"/api/jobs/{slow}/record.json"));
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Matches("^job [0-9a-f]{16} is (queued|running); its record is ready when it is done.$", error);
        await server.Client.DeleteAsync($"/api/jobs/{slow}");
        string id = await server.Submit("""{"images": 1, "steps": 4}""");
        await server.Events(id);
        (status, error) = await Answer(await server.Client.GetAsync($"/api/jobs/{id}/runs/main/images/1.png"));
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("has images 0.png to 0.png, not 1.png", error);
        (status, error) = await Answer(await server.Client.GetAsync($"/api/jobs/{id}/runs/..%2F..%2Fetc/images/0.png"));
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("has no run", error);
        (status, error) = await Answer(await server.Client.DeleteAsync($"/api/jobs/{id}"));
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("is done already", error);
    }

    [Fact]
    public async Task JobsRunOneAtATimeOthersSeeTheirPlaceAndAFullQueueRefuses()
    {
        await using var server = await ServedLadder.Start(ServedLadder.Options with { MaxQueue = 1 });
        const string Long = """{"images": 16, "steps": 400}""";
        // The first job goes to the worker as it is accepted, so the second waits behind it at place 1 however
        // quickly it comes.
        var firstAnswer = JsonDocument.Parse(await (await server.Post(Long)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(("running", 0), (firstAnswer.GetProperty("state").GetString(), firstAnswer.GetProperty("position").GetInt32()));
        string first = firstAnswer.GetProperty("id").GetString()!;
        var second = JsonDocument.Parse(await (await server.Post("""{"images": 1, "steps": 4}""")).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("queued", second.GetProperty("state").GetString());
        Assert.Equal(1, second.GetProperty("position").GetInt32());

        var refused = await server.Post(Long);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("the queue is full: 1 jobs are waiting (the limit is 1)", await refused.Content.ReadAsStringAsync());
        await server.WaitFor(first, JobState.Running);
        var queue = JsonDocument.Parse(await server.Client.GetStringAsync("/api/queue")).RootElement;
        Assert.Equal((true, 1, 1), (queue.GetProperty("running").GetBoolean(), queue.GetProperty("waiting").GetInt32(), queue.GetProperty("maxQueue").GetInt32()));

        var cancel = await server.Client.DeleteAsync($"/api/jobs/{first}");
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        var firstEvents = await server.Events(first);
        Assert.Equal("cancelled", firstEvents[^1].Name);
        Assert.Equal("cancelled by its client.", firstEvents[^1].Data.GetProperty("error").GetString());

        string id = second.GetProperty("id").GetString()!;
        var events = await server.Events(id);
        Assert.Equal(["queued", "running"], events.Select(e => e.Name).Take(2));
        Assert.Equal(1, events[0].Data.GetProperty("position").GetInt32());
        Assert.Equal("done", events[^1].Name);
    }

    [Fact]
    public async Task WithNoRoomToWaitOneJobRunsAndTheNextIsRefused()
    {
        await using var server = await ServedLadder.Start(ServedLadder.Options with { MaxQueue = 0 });
        string first = await server.Submit("""{"images": 16, "steps": 400}""");
        var refused = await server.Post("""{"images": 1, "steps": 4}""");
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("the queue is full: 0 jobs are waiting (the limit is 0)", await refused.Content.ReadAsStringAsync());
        await server.Client.DeleteAsync($"/api/jobs/{first}");
        Assert.Equal("cancelled", (await server.Events(first))[^1].Name);
        string next = await server.Submit("""{"images": 1, "steps": 4}""");
        Assert.Equal("done", (await server.Events(next))[^1].Name);
    }

    [Fact]
    public async Task AJobIsCancelledWhenItsClientGoesAway()
    {
        await using var server = await ServedLadder.Start(ServedLadder.Options with { ClientTimeout = TimeSpan.FromMilliseconds(300), MaxQueue = 2 });
        string running = await server.Submit("""{"images": 16, "steps": 400}""");
        string waiting = await server.Submit("""{"images": 16, "steps": 400}""");

        // The running job's client watches its stream for a while, then leaves; the queued job's client never comes back.
        using (var watch = new CancellationTokenSource())
        {
            var reading = server.Events(running, watch.Token);
            await server.WaitFor(running, JobState.Running);
            await Task.Delay(600);
            Assert.Equal(JobState.Running, server.Queue.Find(running)!.State);
            watch.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
        }
        await server.WaitFor(running, JobState.Cancelled);
        await server.WaitFor(waiting, JobState.Cancelled);
        Assert.Equal("its client went away.", server.Queue.Find(running)!.Error);
        Assert.Equal("its client went away.", server.Queue.Find(waiting)!.Error);
        Assert.Equal((null, 0), server.Queue.Snapshot());
    }

    [Fact]
    public void TheServerListensOnThisMachineOnlyByDefaultAndSaysSo()
    {
        var options = new ServerOptions();
        Assert.Equal("127.0.0.1", options.Host);
        Assert.True(options.IsLoopback);
        Assert.Contains("this machine only", ServeApp.Describe(options, "http://127.0.0.1:8080"));
        var open = options with { Host = "0.0.0.0" };
        Assert.False(open.IsLoopback);
        Assert.Contains("reachable from other machines", ServeApp.Describe(open, "http://0.0.0.0:8080"));
        Assert.Equal("the port must be in 0..65535, got 70000.", Assert.Throws<MediatorDiTException>(() => (options with { Port = 70000 }).Validate()).Message);
    }
}
