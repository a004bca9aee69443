namespace MediatorDiT.Web;

/// <summary>
/// Where `mdit serve` listens and what it accepts. The limits bound one request's work and the queue's length;
/// a request over a limit gets a 4xx answer naming the field and the limit.
/// </summary>
public sealed record ServerOptions
{
    /// <summary>The address to listen on; the default serves this machine only.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>The TCP port (0: any free port, for tests).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>Images one job may ask for (in compare mode each of its two runs makes this many).</summary>
    public int MaxImages { get; init; } = 64;

    /// <summary>Sampler steps one job may ask for.</summary>
    public int MaxSteps { get; init; } = 250;

    /// <summary>Jobs that may wait behind the running one; one more is refused with 429.</summary>
    public int MaxQueue { get; init; } = 8;

    /// <summary>Finished jobs whose images and records stay downloadable (the oldest go first).</summary>
    public int MaxKeptJobs { get; init; } = 32;

    /// <summary>
    /// How long an unfinished job lives without its client: no event stream open and no request about it. After
    /// that it is cancelled (queued jobs leave the queue).
    /// </summary>
    public TimeSpan ClientTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Every this many steps the event stream carries the current images (and always at the last).</summary>
    public int PreviewEvery { get; init; } = 1;

    /// <summary>Largest accepted request body in bytes.</summary>
    public int MaxBodyBytes { get; init; } = 16 * 1024;

    /// <summary>Names of the classes, label c = names[c]; null: "class c".</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>Throws a <see cref="MediatorDiTException"/> naming the first bad setting.</summary>
    public ServerOptions Validate()
    {
        if (string.IsNullOrWhiteSpace(Host)) throw new MediatorDiTException("the host to listen on must not be empty (127.0.0.1 serves this machine only).");
        if (Port is < 0 or > 65535) throw new MediatorDiTException($"the port must be in 0..65535, got {Port}.");
        if (MaxImages < 1) throw new MediatorDiTException($"the image limit must be at least 1, got {MaxImages}.");
        if (MaxSteps < 2) throw new MediatorDiTException($"the step limit must be at least 2, got {MaxSteps}.");
        if (MaxQueue < 0) throw new MediatorDiTException($"the queue limit must be at least 0, got {MaxQueue}.");
        if (MaxKeptJobs < 1) throw new MediatorDiTException($"the number of kept jobs must be at least 1, got {MaxKeptJobs}.");
        if (ClientTimeout <= TimeSpan.Zero) throw new MediatorDiTException($"the client timeout must be positive, got {ClientTimeout}.");
        if (PreviewEvery < 0) throw new MediatorDiTException($"the preview interval must be 0 (none) or positive, got {PreviewEvery}.");
        if (MaxBodyBytes < 256) throw new MediatorDiTException($"the request body limit must be at least 256 bytes, got {MaxBodyBytes}.");
        return this;
    }

    /// <summary>True when <see cref="Host"/> is a loopback address (the server is reachable from this machine only).</summary>
    public bool IsLoopback => Host is "localhost" || (System.Net.IPAddress.TryParse(Host, out var ip) && System.Net.IPAddress.IsLoopback(ip));
}
