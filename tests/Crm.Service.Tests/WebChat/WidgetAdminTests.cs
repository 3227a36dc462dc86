using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Playwright;

namespace Crm.Service.Tests.WebChat;

/// <summary>webchat6, issue 18: the admin view of a widget (/Admin/Widgets): its look and reach edited through the same
/// handler as <c>PUT /api/v1/admin/channels/{id}</c>, a preview and the embed snippet; admins only.</summary>
public sealed class WidgetAdminTests : AppTest
{
    private const string Admin = "admin@example.com";

    private async Task CreateWidgetAsync(object settings)
    {
        using var admin = App.Admin();
        var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/shop", new { kind = "webchat", name = "Shop chat", settings });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    private async Task<JsonElement> SettingsAsync()
    {
        using var admin = App.Admin();
        return (await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/shop")).GetProperty("settings");
    }

    private static Dictionary<string, string> Form(string version, string colour = "#c0392b") => new()
    {
        ["AllowedOrigins"] = "https://shop.example\nhttps://www.shop.example",
        ["Colour"] = colour,
        ["TitleEn"] = "Ask the shop",
        ["TitleZh"] = "咨询商店",
        ["GreetingEn"] = "Hello <b>there</b>",
        ["GreetingZh"] = "",
        ["Position"] = "bottomLeft",
        ["Team"] = "",
        ["PreChatForm"] = "true",
        ["Version"] = version,
    };

    /// <summary>The preview as the edit page's frame loads it (review WC6: served only so).</summary>
    private static Task<HttpResponseMessage> FramedAsync(ConsoleBrowser browser, string path, string dest = "iframe", string site = "same-origin")
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("Sec-Fetch-Dest", dest);
        request.Headers.Add("Sec-Fetch-Site", site);
        return browser.Client.SendAsync(request);
    }

    private static string VersionOf(string page) => Regex.Match(page, "name=\"Version\" value=\"(\\d+)\"").Groups[1].Value;

    [Fact]
    public async Task An_admin_changes_a_widgets_look_on_its_page_and_the_rest_of_its_settings_stay()
    {
        await CreateWidgetAsync(new { allowedOrigins = new[] { "https://old.example" }, emailChannel = "support", maxUploadBytes = 1000 });
        using var admin = await ConsoleBrowser.SignedInAsync(App, Admin, ConsoleRoles.Admin);

        var list = await admin.PageAsync("/Admin/Widgets");
        Assert.Contains("href=\"/Admin/Widgets/Edit/shop\"", list, StringComparison.Ordinal);
        Assert.Contains("https://old.example", list, StringComparison.Ordinal);
        var page = await admin.PageAsync("/Admin/Widgets/Edit/shop");
        Assert.Contains("data-channel=&quot;shop&quot; async&gt;&lt;/script&gt;", page, StringComparison.Ordinal);
        Assert.Contains("src=\"/Admin/Widgets/Preview/shop?", page, StringComparison.Ordinal);

        var saved = await admin.SubmitAsync("/Admin/Widgets/Edit/shop", Form(VersionOf(page)));

        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        var settings = await SettingsAsync();
        Assert.Equal("#c0392b", settings.GetProperty("colour").GetString());
        Assert.Equal(["https://shop.example", "https://www.shop.example"], settings.GetProperty("allowedOrigins").EnumerateArray().Select(o => o.GetString()));
        Assert.Equal("Ask the shop", settings.GetProperty("title").GetProperty("en").GetString());
        Assert.Equal("咨询商店", settings.GetProperty("title").GetProperty("zh").GetString());
        Assert.Equal("Hello <b>there</b>", settings.GetProperty("greeting").GetProperty("en").GetString());
        Assert.Equal("bottomLeft", settings.GetProperty("position").GetString());
        Assert.True(settings.GetProperty("preChatForm").GetBoolean());
        // Not on the page: kept as stored.
        Assert.Equal("support", settings.GetProperty("emailChannel").GetString());
        Assert.Equal(1000, settings.GetProperty("maxUploadBytes").GetInt32());
        // The preview frame shows the saved look; the greeting goes into an attribute, encoded.
        using var framedPreview = await FramedAsync(admin, "/Admin/Widgets/Preview/shop?colour=%23c0392b&greetingEn=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
        Assert.Equal(HttpStatusCode.OK, framedPreview.StatusCode);
        var preview = await framedPreview.Content.ReadAsStringAsync();
        Assert.Contains("data-preview=\"{&quot;colour&quot;:&quot;#c0392b&quot;", preview, StringComparison.Ordinal);
        Assert.DoesNotContain("<script>alert", preview, StringComparison.Ordinal);

        // Review WC1: anti-forgery sets SAMEORIGIN on every page with a form (the layout's sign-out form), and the
        // console kept it; framing is opt-in now: only the preview may be framed (by the console), every other page is DENY.
        foreach (var path in new[] { "/Admin/Widgets/Edit/shop", "/Admin/Widgets" })
        {
            using var response = await admin.GetAsync(path);
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        }
        using (var framed = await FramedAsync(admin, "/Admin/Widgets/Preview/shop"))
            Assert.Equal("SAMEORIGIN", framed.Headers.GetValues("X-Frame-Options").Single());
    }

    /// <summary>Review WC6: the preview shows text from its query on the console's origin, so it is served only as the
    /// console's own frame: a link opened as a page, or a frame of another site, gets 404.</summary>
    [Fact]
    public async Task The_preview_is_served_only_as_a_frame_of_the_console()
    {
        await CreateWidgetAsync(new { allowedOrigins = new[] { "https://shop.example" } });
        using var admin = await ConsoleBrowser.SignedInAsync(App, Admin, ConsoleRoles.Admin);
        const string spoof = "/Admin/Widgets/Preview/shop?titleEn=Security+notice&greetingEn=Your+session+expired";

        using var plain = await admin.GetAsync(spoof);
        using var link = await FramedAsync(admin, spoof, dest: "document", site: "cross-site");
        using var foreignFrame = await FramedAsync(admin, spoof, site: "cross-site");
        using var framed = await FramedAsync(admin, spoof);

        Assert.Equal(HttpStatusCode.NotFound, plain.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, link.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, foreignFrame.StatusCode);
        Assert.DoesNotContain("Security notice", await link.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, framed.StatusCode);
        Assert.Contains("Security notice", await framed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    /// <summary>Review WC4: the stale check is made by the grain, in the turn that writes: a configure over an older
    /// version (an admin's form read before an API change that disabled the widget) is refused with Conflict and the
    /// newer change stays; one over the current version applies.</summary>
    [Fact]
    public async Task A_configure_over_an_older_version_is_refused_by_the_grain_and_the_newer_change_stays()
    {
        await CreateWidgetAsync(new { allowedOrigins = new[] { "https://shop.example" } });
        var grain = App.Grains.GetGrain<Crm.Service.Contracts.IChannelAccountGrain>("shop");
        var read = (await grain.GetAsync())!;
        using (var api = App.Admin())
        {
            var disabled = await api.PutAsJsonAsync("/api/v1/admin/channels/shop", new
            {
                kind = "webchat", name = "Shop chat (off)", enabled = false, settings = new { allowedOrigins = new[] { "https://shop.example" }, colour = "#00aa00" },
            });
            Assert.True(disabled.IsSuccessStatusCode, await disabled.Content.ReadAsStringAsync());
        }
        Crm.Service.Contracts.ChannelAccountSettings Over(Crm.Service.Contracts.ChannelAccountSnapshot version) => new()
        {
            Kind = Crm.Service.Contracts.ChannelKind.WebChat, Name = read.Name, Enabled = true, Settings = read.Settings, ExpectedUpdatedAt = version.UpdatedAt,
        };

        var refused = await Assert.ThrowsAsync<Crm.Service.Contracts.DomainException>(() => grain.ConfigureAsync(Over(read)));

        Assert.Equal(Crm.Service.Contracts.DomainErrorKind.Conflict, refused.Kind);
        var kept = (await grain.GetAsync())!;
        Assert.False(kept.Enabled);
        Assert.Equal("Shop chat (off)", kept.Name);
        Assert.Equal("#00aa00", (await SettingsAsync()).GetProperty("colour").GetString());
        var applied = await grain.ConfigureAsync(Over(kept));
        Assert.True(applied.Account.Enabled);
    }

    [Fact]
    public async Task A_bad_colour_or_origin_is_refused_at_its_field_and_nothing_is_saved()
    {
        await CreateWidgetAsync(new { allowedOrigins = new[] { "https://shop.example" }, colour = "#123456" });
        using var admin = await ConsoleBrowser.SignedInAsync(App, Admin, ConsoleRoles.Admin);
        var version = VersionOf(await admin.PageAsync("/Admin/Widgets/Edit/shop"));

        var badColour = await admin.SubmitAsync("/Admin/Widgets/Edit/shop", Form(version, colour: "red"));
        var originForm = Form(version);
        originForm["AllowedOrigins"] = "https://*.example";
        var badOrigin = await admin.SubmitAsync("/Admin/Widgets/Edit/shop", originForm);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, badColour.StatusCode);
        var html = await badColour.Content.ReadAsStringAsync();
        // The API's own sentence, at the colour field (the same validation as PUT /api/v1/admin/channels/{id}).
        Assert.Matches("<span class=\"error field-validation-error\" data-valmsg-for=\"Colour\"[^>]*>colour must be &quot;#rrggbb&quot;", html);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badOrigin.StatusCode);
        Assert.Contains("data-valmsg-for=\"AllowedOrigins\"", await badOrigin.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("#123456", (await SettingsAsync()).GetProperty("colour").GetString());
    }

    [Fact]
    public async Task A_save_over_a_newer_change_is_refused()
    {
        await CreateWidgetAsync(new { allowedOrigins = new[] { "https://shop.example" } });
        using var admin = await ConsoleBrowser.SignedInAsync(App, Admin, ConsoleRoles.Admin);
        var version = VersionOf(await admin.PageAsync("/Admin/Widgets/Edit/shop"));
        await CreateWidgetAsync(new { allowedOrigins = new[] { "https://shop.example" }, colour = "#00aa00" });

        var stale = await admin.SubmitAsync("/Admin/Widgets/Edit/shop", Form(version));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, stale.StatusCode);
        Assert.Equal("#00aa00", (await SettingsAsync()).GetProperty("colour").GetString());
    }

    [Fact]
    public async Task Agents_and_supervisors_get_403_and_change_nothing_and_a_post_needs_its_token()
    {
        await CreateWidgetAsync(new { allowedOrigins = new[] { "https://shop.example" }, colour = "#123456" });
        using var admin = await ConsoleBrowser.SignedInAsync(App, Admin, ConsoleRoles.Admin);
        var version = VersionOf(await admin.PageAsync("/Admin/Widgets/Edit/shop"));
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent, ConsoleRoles.Supervisor);

        foreach (var path in new[] { "/Admin/Widgets", "/Admin/Widgets/Edit/shop", "/Admin/Widgets/Preview/shop" })
        {
            var refused = await agent.GetAsync(path);
            Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
            var denied = refused.Headers.Location!.OriginalString;
            Assert.Contains("/Account/AccessDenied", denied, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.Forbidden, (await agent.GetAsync(denied)).StatusCode);
        }
        var posted = await agent.SubmitAsync("/Queues", Form(version), "/Admin/Widgets/Edit/shop");
        Assert.Contains("/Account/AccessDenied", posted.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostWithoutTokenAsync("/Admin/Widgets/Edit/shop", Form(version))).StatusCode);
        Assert.Equal("#123456", (await SettingsAsync()).GetProperty("colour").GetString());
    }
}

/// <summary>The widget page in chromium: the preview frame draws the real widget in the chosen colour and follows the
/// form while the admin types.</summary>
public sealed class WidgetAdminBrowserTests : IAsyncLifetime
{
    private const string Admin = "admin@example.com";
    private readonly TempDirectory _data = new();
    private CrmApp _app = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;
    private string _baseUrl = "";

    public async Task InitializeAsync()
    {
        var port = FreePorts.Next();
        _baseUrl = $"http://127.0.0.1:{port}";
        _app = new CrmApp(_data.Path);
        _app.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        _app.StartServer();
        using (var admin = _app.Admin())
        {
            var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/shop", new
            {
                kind = "webchat", name = "Shop chat",
                settings = new { allowedOrigins = new[] { "https://shop.example" }, colour = "#c0392b", title = new { en = "Shop help" } },
            });
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }
        await ConsoleBrowser.CreateUserAsync(_app, Admin, ConsoleRoles.Admin);
        _playwright = await Playwright.CreateAsync();
        _browser = await Chromium.LaunchAsync(_playwright);
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await _app.DisposeAsync();
        _data.Dispose();
    }

    [Fact]
    public async Task The_preview_shows_the_widget_in_the_chosen_colour_and_follows_the_form()
    {
        var page = await _browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        await page.GotoAsync(_baseUrl + "/Account/Login");
        await page.SignInAsync(Admin, new Regex("^(?!.*Login)"), "#main");

        // Errors of the widget pages (the preview frame's CSP, the widget's script); the favicon is not ours.
        var errors = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && !message.Location.Contains("favicon", StringComparison.Ordinal))
                errors.Add(message.Location + ": " + message.Text);
        };
        await page.GotoAsync(_baseUrl + "/Admin/Widgets");
        await page.GetByRole(AriaRole.Link, new() { Name = "Edit" }).ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/Admin/Widgets/Edit/shop"));

        var preview = page.FrameLocator("#widget-preview");
        var launcher = preview.Locator("crm-webchat .launcher");
        await Assertions.Expect(launcher).ToHaveCSSAsync("background-color", "rgb(192, 57, 43)");
        await Assertions.Expect(preview.Locator("crm-webchat .title")).ToHaveTextAsync("Shop help");
        await Assertions.Expect(preview.Locator("crm-webchat .panel")).ToBeVisibleAsync();

        // Typing a new colour and title redraws the preview before anything is saved.
        await page.Locator("#Colour").FillAsync("#2e7d32");
        await page.Locator("#TitleEn").FillAsync("Garden help");
        await Assertions.Expect(launcher).ToHaveCSSAsync("background-color", "rgb(46, 125, 50)");
        await Assertions.Expect(preview.Locator("crm-webchat .title")).ToHaveTextAsync("Garden help");
        if (Environment.GetEnvironmentVariable("CRM_SCREENSHOT_DIR") is { Length: > 0 } directory)
            await page.ScreenshotAsync(new() { Path = Path.Combine(directory, "webchat-admin.png"), FullPage = true });

        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Assertions.Expect(page.Locator("#widget-saved")).ToBeVisibleAsync();
        await Assertions.Expect(launcher).ToHaveCSSAsync("background-color", "rgb(46, 125, 50)");
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }
}
