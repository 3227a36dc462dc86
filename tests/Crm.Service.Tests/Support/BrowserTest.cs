using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Crm.Service.Tests.Support;

/// <summary>The whole service on a real Kestrel port, with Debian's headless chromium to drive it (one app and one
/// browser per test, as xUnit makes a class instance per test).</summary>
public abstract class BrowserTest : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private IPlaywright _playwright = null!;

    internal CrmApp App { get; private set; } = null!;

    protected IBrowser Browser { get; private set; } = null!;

    /// <summary>The service's address, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    protected string BaseUrl { get; private set; } = "";

    /// <summary>What the test needs in place before the browser starts (channels, people).</summary>
    protected virtual Task SetUpAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        var port = FreePorts.Next();
        BaseUrl = $"http://127.0.0.1:{port}";
        App = new CrmApp(_data.Path);
        App.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        App.StartServer();
        await SetUpAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await Chromium.LaunchAsync(_playwright);
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
        await App.DisposeAsync();
        _data.Dispose();
    }

    /// <summary>A page of its own (its own browser context) that opened <paramref name="path"/>, was sent to sign in,
    /// signed in as <paramref name="email"/> and arrived at <paramref name="arrivedAt"/> (any page but the sign-in
    /// page when null) showing <paramref name="selector"/>.</summary>
    protected async Task<IPage> SignedInPageAsync(string email, string path = "/", Regex? arrivedAt = null, string selector = "#main", int height = 900)
    {
        var page = await Browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = height } });
        await page.GotoAsync(BaseUrl + path);
        await page.SignInAsync(email, arrivedAt ?? new Regex("^(?!.*Account/Login)"), selector);
        return page;
    }
}
