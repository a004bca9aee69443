using MediatorDiT.Pipelines;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace MediatorDiT.Web.Tests;

/// <summary>
/// The page of `mdit serve` in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
/// scripts/setup.sh) driven by Playwright against the server on a loopback port. The screenshot it takes is kept
/// in $MDIT_TEST_ARTIFACTS (default: artifacts/ beside the test assembly).
/// </summary>
public class ServePageTests
{
    private const string Chromium = "/usr/bin/chromium";
    private static readonly TimeSpan LivenessBound = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task APersonGeneratesTwoImagesWatchesTheStripFillAndSeesABadValuesMessage()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing; scripts/setup.sh installs Debian's chromium for this test.");
        await using var app = ServeApp.Build(ServedLadder.Pipeline, ServedLadder.Options with { Port = 0 });
        await app.StartAsync();
        string url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        Assert.StartsWith("http://127.0.0.1:", url);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            // No background traffic: this machine's network is closed, and the page needs none.
            Args = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1100, Height = 900 } });
        // Bounds on waiting, not on speed: on a 2-core machine the other test assembly runs beside this one
        // (multithreaded GEMMs, the ILGPU CPU accelerator's spinning threads) and the first step can take over 30 s.
        page.SetDefaultTimeout((float)LivenessBound.TotalMilliseconds);
        Assertions.SetDefaultExpectTimeout((float)LivenessBound.TotalMilliseconds);
        var consoleErrors = new List<string>();
        page.Console += (_, message) => { if (message.Type == "error") consoleErrors.Add($"{message.Text} ({message.Location})"); };
        await page.GotoAsync(url);
        await Assertions.Expect(page.Locator("#classes input")).ToHaveCountAsync(10);
        await Assertions.Expect(page.Locator("#model")).ToContainTextAsync("m4 / m16 / m64");

        // Two images, a Trouser and a Bag, 8 time points (7 SDE steps and the last step), compared with m64 alone.
        await page.ClickAsync("#no-classes");
        await page.CheckAsync("#classes input[data-class='1']");
        await page.CheckAsync("#classes input[data-class='8']");
        await page.FillAsync("#images", "2");
        await page.FillAsync("#steps", "8");
        await page.ClickAsync("#generate");

        var dynamicCells = page.Locator("#run-dynamic .strip .cell.filled");
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#run-dynamic .strip .cell.filled').length > 0");
        await Assertions.Expect(page.Locator("img.final")).ToHaveCountAsync(4);
        await Assertions.Expect(dynamicCells).ToHaveCountAsync(2 * 8);
        await Assertions.Expect(page.Locator("#run-largest .strip .cell.filled")).ToHaveCountAsync(2 * 8);
        string[] captions = await page.Locator("#run-dynamic .tile img").EvaluateAllAsync<string[]>("images => images.map(i => i.alt)");
        Assert.Equal(new[] { "Trouser", "Bag" }, captions);
        int[] widths = await page.Locator("img.final").EvaluateAllAsync<int[]>("images => images.map(i => i.naturalWidth)");
        Assert.Equal(new[] { 32, 32, 32, 32 }, widths);
        // m64 alone serves every step: its strip is one colour, the largest model's.
        var largestColours = await page.Locator("#run-largest .strip .cell").EvaluateAllAsync<string[]>("cells => cells.map(c => c.title)");
        Assert.All(largestColours, title => Assert.EndsWith(": m64", title));

        var table = page.Locator("#gflops");
        await Assertions.Expect(table).ToBeVisibleAsync();
        await Assertions.Expect(table).ToContainTextAsync("GFLOPs/image");
        string largestRow = await page.Locator("#gflops tr").Nth(2).InnerTextAsync();
        Assert.Contains("m64 alone", largestRow);
        Assert.Contains("0.0%", largestRow);
        await Assertions.Expect(page.Locator("#status")).ToHaveTextAsync("done");
        await Assertions.Expect(page.Locator("#downloads a")).ToHaveAttributeAsync("href", new System.Text.RegularExpressions.Regex("^/api/jobs/[0-9a-f]{16}/record.json$"));

        string folder = Environment.GetEnvironmentVariable("MDIT_TEST_ARTIFACTS") is { Length: > 0 } given ? given : Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(folder);
        string shot = Path.Combine(folder, "serve-page.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true });
        Assert.True(new FileInfo(shot).Length > 1000);

        // An invalid value: the server's sentence appears on the page, and nothing starts.
        await page.FillAsync("#steps", "100000");
        await page.ClickAsync("#generate");
        await Assertions.Expect(page.Locator("#error")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#error")).ToContainTextAsync("\"steps\" must be from 2 to 400");
        // The one console error is the browser noting the refused POST.
        Assert.Equal("Failed to load resource: the server responded with a status of 400 (Bad Request)", Assert.Single(consoleErrors).Split(" (" + url)[0]);
        await app.StopAsync();
    }
}
