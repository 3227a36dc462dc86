using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.WebChat;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Crm.Service.Tests.WebChat;

/// <summary>
/// The widget in Debian's headless chromium (/usr/bin/chromium, no download), embedded with its script tag in a page
/// served from another origin on 127.0.0.1 (so CORS and the origin allow-list are real), against the whole service on
/// its own Kestrel port. Set CRM_SCREENSHOT_DIR to save docs/screenshots/webchat-widget.png.
/// </summary>
public sealed class WidgetBrowserTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private CrmApp _app = null!;
    private WebApplication _site = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;
    private string _service = "";
    private string _origin = "";

    public async Task InitializeAsync()
    {
        var port = FreePorts.Next();
        _service = $"http://127.0.0.1:{port}";
        _app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            // The hostile test sends a whole corpus as one visitor.
            ["Channels:WebChat:MessageBurstPerVisitor"] = "1000",
            ["Channels:WebChat:HistorySize"] = "1000",
            ["Channels:WebChat:RequestsPerMinutePerAddress"] = "100000",
        });
        _app.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        _app.StartServer();

        // The customer's site: another origin, with styles that would wreck any widget that shared its DOM.
        var sitePort = FreePorts.Next();
        _origin = $"http://127.0.0.1:{sitePort}";
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(_origin);
        _site = builder.Build();
        _site.MapGet("/", (HttpContext http) => Results.Content($$"""
            <!doctype html>
            <html lang="{{(http.Request.Query["lang"] == "zh" ? "zh-CN" : "en")}}"><head><meta charset="utf-8"><title>Shop</title>
            <style>
              body { font-family: serif; background: #fafafa; }
              h1 { font-size: 32px; color: rgb(20, 40, 60); }
              button, textarea, li, div { display: none !important; color: red !important; }
              [data-crm-webchat], body > :not(h1):not(p) { display: none !important; visibility: hidden !important; opacity: 0 !important; }
            </style></head>
            <body><h1>Example shop</h1><p>Our products.</p>
            <script src="{{_service}}/widget.js" data-channel="shop" async></script>
            </body></html>
            """, "text/html; charset=utf-8"));
        await _site.StartAsync();

        using var admin = _app.Admin();
        var created = await admin.PutAsJsonAsync("/api/v1/admin/channels/shop", new
        {
            kind = "webchat",
            name = "Shop chat",
            settings = new
            {
                allowedOrigins = new[] { _origin },
                colour = "#0a7d4f",
                title = new { en = "Shop help", zh = "商店客服" },
                greeting = new { en = "Hi! Ask us anything.", zh = "您好！请问有什么可以帮您？" },
                position = "bottomRight",
            },
        });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        _playwright = await Playwright.CreateAsync();
        _browser = await Chromium.LaunchAsync(_playwright);
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await _site.DisposeAsync();
        await _app.DisposeAsync();
        _data.Dispose();
    }

    private async Task<(IPage Page, List<string> Dialogs)> OpenSiteAsync(IBrowserContext context, string path = "/")
    {
        var page = await context.NewPageAsync();
        var dialogs = new List<string>();
        page.Dialog += async (_, dialog) =>
        {
            lock (dialogs)
                dialogs.Add($"{dialog.Type}:{dialog.Message}");
            await dialog.DismissAsync();
        };
        await page.GotoAsync(_origin + path);
        return (page, dialogs);
    }

    private async Task<long> TicketOfLatestVisitorMessageAsync() =>
        await Eventually.WaitForAsync(
            () => _app.QueryAsync(db => db.Messages.Where(m => m.ChannelAccountId == "shop").Select(m => (long?)m.TicketNumber).FirstOrDefaultAsync()),
            n => n is not null, what: "the visitor's message stored") ?? 0;

    [Fact]
    public async Task A_visitor_chats_on_a_customer_site_and_the_agents_reply_appears_without_reload()
    {
        await using var context = await _browser.NewContextAsync(new() { ViewportSize = new() { Width = 1000, Height = 720 }, Locale = "en-US" });
        var (page, dialogs) = await OpenSiteAsync(context);
        var launcher = page.Locator(".launcher");
        await Assertions.Expect(launcher).ToBeVisibleAsync();
        // The site's "display: none !important" on every button and div does not reach into the shadow root, and
        // the widget's styles do not reach out.
        Assert.Equal("rgb(10, 125, 79)", await launcher.EvaluateAsync<string>("b => getComputedStyle(b).backgroundColor"));
        Assert.Equal("rgb(20, 40, 60)", await page.Locator("h1").EvaluateAsync<string>("h => getComputedStyle(h).color"));
        Assert.Equal("32px", await page.Locator("h1").EvaluateAsync<string>("h => getComputedStyle(h).fontSize"));

        await launcher.ClickAsync();
        await Assertions.Expect(page.Locator(".title")).ToHaveTextAsync("Shop help");
        await Assertions.Expect(page.Locator(".line.greeting")).ToContainTextAsync("Hi! Ask us anything.");
        await page.Locator("textarea.input").FillAsync("Hello, where is my parcel?");
        await page.Locator("textarea.input").PressAsync("Enter");
        var mine = page.Locator(".line.mine:not(.pending)");
        await Assertions.Expect(mine).ToHaveCountAsync(1);
        await Assertions.Expect(mine).ToContainTextAsync("Hello, where is my parcel?");

        using var agent = await _app.AgentAsync();
        var ticket = await TicketOfLatestVisitorMessageAsync();
        var reply = await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text = "It left our warehouse this morning." });
        Assert.True(reply.IsSuccessStatusCode);
        var theirs = page.Locator(".line.theirs:not(.greeting)");
        await Assertions.Expect(theirs).ToContainTextAsync("It left our warehouse this morning.");

        // The agent reads and types: the visitor sees both.
        var visitorMessageId = await _app.QueryAsync(db => db.Messages.Where(m => m.ChannelAccountId == "shop" && m.Direction == Crm.Service.Contracts.MessageDirection.Inbound).Select(m => m.Id).SingleAsync());
        var conversation = await _app.QueryAsync(db => db.Conversations.Where(c => c.ChannelAccountId == "shop").Select(c => c.ThreadKey).SingleAsync());
        var activity = await agent.PostAsJsonAsync($"/api/v1/webchat-conversations/shop/{conversation}/activity", new { typing = true, readUpTo = visitorMessageId });
        Assert.Equal(HttpStatusCode.NoContent, activity.StatusCode);
        await Assertions.Expect(page.Locator(".typing")).ToBeVisibleAsync();
        await Assertions.Expect(mine.Locator(".receipt")).ToHaveTextAsync("Read");
        if (Environment.GetEnvironmentVariable("CRM_SCREENSHOT_DIR") is { Length: > 0 } directory)
            await page.ScreenshotAsync(new() { Path = Path.Combine(directory, "webchat-widget.png") });

        // A file through the widget's attach button: sent over HTTP, stored as an attachment of this conversation.
        await page.Locator("input.file").SetInputFilesAsync(new FilePayload { Name = "receipt.txt", MimeType = "text/plain", Buffer = "Order 4711"u8.ToArray() });
        await Assertions.Expect(page.Locator(".line.mine:not(.pending)").Filter(new() { HasText = "File: receipt.txt" })).ToHaveCountAsync(1);
        Assert.Equal(1, await _app.QueryAsync(db => db.Attachments.CountAsync()));

        // A returning visitor (same browser, new page view) gets the conversation back from the store.
        var (again, _) = await OpenSiteAsync(context);
        await again.Locator(".launcher").ClickAsync();
        await Assertions.Expect(again.Locator(".line.mine").First).ToContainTextAsync("Hello, where is my parcel?");
        await Assertions.Expect(again.Locator(".line.theirs:not(.greeting)")).ToContainTextAsync("It left our warehouse this morning.");
        Assert.Empty(dialogs);
    }

    [Fact]
    public async Task An_agent_opening_the_ticket_and_typing_in_the_console_shows_read_and_typing_in_the_widget()
    {
        await using var context = await _browser.NewContextAsync(new() { Locale = "en-US" });
        var (page, dialogs) = await OpenSiteAsync(context);
        await page.Locator(".launcher").ClickAsync();
        await page.Locator("textarea.input").FillAsync("Is anyone there?");
        await page.Locator("textarea.input").PressAsync("Enter");
        var mine = page.Locator(".line.mine:not(.pending)");
        await Assertions.Expect(mine).ToHaveCountAsync(1);
        var ticket = await TicketOfLatestVisitorMessageAsync();

        // The agents' hub as a signed-in agent (what console.js does on the ticket page).
        await ConsoleBrowser.CreateUserAsync(_app, "typing-agent@example.com", Crm.Service.Auth.ConsoleRoles.Agent);
        var session = await ConsoleBrowser.SessionCookieOverHttpAsync(new Uri(_service), "typing-agent@example.com");
        await using var hub = new HubConnectionBuilder().WithUrl($"{_service}/hubs/agents", o =>
        {
            o.Transports = HttpTransportType.LongPolling;
            o.Headers["Cookie"] = session;
        }).Build();
        await hub.StartAsync();
        // Opening the ticket marks the visitor's message read ...
        await hub.InvokeAsync("WatchTicket", ticket);
        await Assertions.Expect(mine.Locator(".receipt")).ToHaveTextAsync("Read");
        await Assertions.Expect(page.Locator(".typing")).ToBeHiddenAsync();
        // ... and typing a reply shows "An agent is typing…" in the widget.
        await hub.InvokeAsync("Typing", ticket, "reply");
        await Assertions.Expect(page.Locator(".typing")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator(".typing")).ToHaveTextAsync("An agent is typing…");
        Assert.Empty(dialogs);
    }

    [Fact]
    public async Task The_widget_speaks_chinese_on_a_chinese_page()
    {
        await using var context = await _browser.NewContextAsync(new() { Locale = "en-US" });
        var (page, _) = await OpenSiteAsync(context, "/?lang=zh");
        await page.Locator(".launcher").ClickAsync();
        await Assertions.Expect(page.Locator(".title")).ToHaveTextAsync("商店客服");
        await Assertions.Expect(page.Locator(".line.greeting")).ToContainTextAsync("您好！请问有什么可以帮您？");
        Assert.Equal("发送", (await page.Locator(".send").TextContentAsync())?.Trim());
    }

    [Fact]
    public async Task Hostile_strings_sent_by_the_visitor_and_the_agent_are_shown_as_text_and_never_run()
    {
        var sanitizer = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Corpora", "hostile", "sanitizer-vectors", "htmlsanitizer-tests.json")));
        var blns = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Corpora", "hostile", "blns", "blns.json")));
        var vectors = sanitizer.RootElement.EnumerateArray().Select(v => v.GetProperty("input").GetString()!)
            .Concat(blns.RootElement.EnumerateArray().Select(v => v.GetString()!).Where(s => s.Contains('<', StringComparison.Ordinal) || s.Contains("javascript", StringComparison.OrdinalIgnoreCase)))
            .Select(v => v.Trim()).Where(v => v.Length is > 0 and <= 4000).Distinct().ToList();
        Assert.True(vectors.Count > 100, $"only {vectors.Count} vectors");

        await using var context = await _browser.NewContextAsync(new() { Locale = "en-US" });
        var (page, dialogs) = await OpenSiteAsync(context);
        await page.Locator(".launcher").ClickAsync();
        await page.Locator("textarea.input").FillAsync("<img src=x onerror=alert('typed')>");
        await page.Locator("textarea.input").PressAsync("Enter");
        await Assertions.Expect(page.Locator(".line.mine:not(.pending)")).ToHaveCountAsync(1);

        // The rest of the corpus as this visitor (its token from the widget's storage) and as the agent's replies.
        var stored = await page.EvaluateAsync<string>("() => localStorage.getItem('crm-webchat:shop')");
        var token = JsonDocument.Parse(stored).RootElement.GetProperty("token").GetString()!;
        var conversation = await _app.QueryAsync(db => db.Conversations.Where(c => c.ChannelAccountId == "shop").Select(c => c.ThreadKey).SingleAsync());
        await using (var hub = new HubConnectionBuilder().WithUrl($"{_service}/hubs/visitor?widget=shop", o =>
                     {
                         o.AccessTokenProvider = () => Task.FromResult<string?>(token);
                         o.Headers["Origin"] = _origin;
                         o.Transports = HttpTransportType.WebSockets;
                     }).Build())
        {
            await hub.StartAsync();
            for (var i = 0; i < vectors.Count; i++)
                await hub.InvokeAsync<SendAck>("Send", conversation, $"h-{i}", vectors[i]);
        }
        using var agent = await _app.AgentAsync();
        var ticket = await TicketOfLatestVisitorMessageAsync();
        foreach (var vector in vectors.Take(20))
            Assert.True((await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text = vector })).IsSuccessStatusCode);

        await Assertions.Expect(page.Locator(".line.theirs:not(.greeting)")).ToHaveCountAsync(20, new() { Timeout = 60_000 });
        var (again, dialogsAgain) = await OpenSiteAsync(context);
        await again.Locator(".launcher").ClickAsync();
        await Assertions.Expect(again.Locator(".line.mine")).ToHaveCountAsync(vectors.Count + 1, new() { Timeout = 60_000 });
        foreach (var view in new[] { page, again })
        {
            await view.EvaluateAsync("() => new Promise(r => setTimeout(r, 500))");
            var root = view.Locator("[data-crm-webchat]");
            var scripts = await root.EvaluateAsync<int>("h => h.shadowRoot.querySelectorAll('script, iframe, img, object, embed, a[href^=\"javascript\" i], .log svg, .log style').length");
            var handlers = await root.EvaluateAsync<int>("h => [...h.shadowRoot.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length");
            var pageScripts = await view.EvaluateAsync<int>("() => document.querySelectorAll('script').length");
            Assert.Equal(0, scripts);
            Assert.Equal(0, handlers);
            Assert.Equal(1, pageScripts);
        }
        // Each vector is on screen exactly as it was sent, character for character.
        var texts = await again.Locator(".line.mine .bubble").EvaluateAllAsync<string[]>("bs => bs.map(b => b.textContent)");
        var missing = vectors.Where(v => !texts.Contains(v)).ToList();
        Assert.True(missing.Count == 0, "not shown as sent: " + string.Join(" | ", missing.Take(5)));
        Assert.Empty(dialogs);
        Assert.Empty(dialogsAgain);
    }

    [Fact]
    public async Task A_visitor_typing_a_question_on_the_shop_gets_a_link_that_opens_the_article_on_the_service()
    {
        using var editor = await Crm.Service.Tests.KnowledgeBase.KbClient.EditorAsync(_app);
        await Crm.Service.Tests.KnowledgeBase.KbClient.PublishAsync(editor,
            await Crm.Service.Tests.KnowledgeBase.KbClient.CreateAsync(editor, "Reset your password", "Use the reset password link on the sign-in page."));
        var search = _app.Services.GetRequiredService<IArticleSuggestions>();
        await Eventually.WaitForAsync(() => search.SuggestAsync("reset my password", "en", 3), found => found.Count > 0, what: "the article indexed");

        await using var context = await _browser.NewContextAsync(new() { Locale = "en-US" });
        var (page, dialogs) = await OpenSiteAsync(context);
        await page.Locator(".launcher").ClickAsync();
        await Assertions.Expect(page.Locator(".line.greeting")).ToBeVisibleAsync();
        await page.Locator("textarea.input").PressSequentiallyAsync("how do I reset my password", new() { Delay = 100 });

        var link = page.Locator(".suggestions a");
        await Assertions.Expect(link).ToHaveTextAsync("Reset your password");
        var href = await link.EvaluateAsync<string>("a => a.href");
        // On the service, not on the shop the widget is embedded in.
        Assert.StartsWith(_service + "/help/en/articles/", href, StringComparison.Ordinal);
        var opened = context.WaitForPageAsync();
        await link.ClickAsync();
        var article = await opened;
        await Assertions.Expect(article.Locator("body")).ToContainTextAsync("Use the reset password link on the sign-in page.");
        Assert.Empty(dialogs);
    }

    [Fact]
    public async Task V10_a_message_typed_while_the_session_request_is_on_its_way_is_sent()
    {
        await using var context = await _browser.NewContextAsync(new() { Locale = "en-US" });
        var page = await context.NewPageAsync();
        // The session answer comes late (a slow mobile network); the visitor writes meanwhile.
        var release = new TaskCompletionSource();
        await page.RouteAsync("**/api/v1/webchat/shop/sessions", async route =>
        {
            await release.Task;
            await route.ContinueAsync();
        });
        await page.GotoAsync(_origin + "/");
        await page.Locator(".launcher").ClickAsync();
        await page.Locator("textarea.input").FillAsync("Typed before the session came");
        await page.Locator("textarea.input").PressAsync("Enter");
        await page.WaitForFunctionAsync("() => (JSON.parse(localStorage.getItem('crm-webchat:shop') || '{}').pending || []).length === 1", null, new() { Timeout = 30_000 });
        release.SetResult();
        await Eventually.WaitForAsync(
            () => _app.QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == "shop" && m.Text == "Typed before the session came")),
            n => n == 1, timeout: TimeSpan.FromSeconds(60), what: "the message stored");
        await Assertions.Expect(page.Locator(".line.mine:not(.pending)")).ToHaveCountAsync(1, new() { Timeout = 30_000 });
    }

    [Fact]
    public async Task A_message_refused_while_the_widget_is_off_is_kept_and_sent_once_it_is_on_again()
    {
        await using var context = await _browser.NewContextAsync(new() { Locale = "en-US" });
        var (page, _) = await OpenSiteAsync(context);
        await page.Locator(".launcher").ClickAsync();
        await page.Locator("textarea.input").FillAsync("First message");
        await page.Locator("textarea.input").PressAsync("Enter");
        await Assertions.Expect(page.Locator(".line.mine:not(.pending)")).ToHaveCountAsync(1);

        // The channel is turned off while the visitor's connection stays open: the next message is refused, not lost.
        using var admin = _app.Admin();
        Assert.True((await admin.PutAsJsonAsync("/api/v1/admin/channels/shop", new { kind = "webchat", name = "Shop chat", enabled = false, settings = new { allowedOrigins = new[] { _origin } } })).IsSuccessStatusCode);
        await page.Locator("textarea.input").FillAsync("Sent while the chat was off");
        await page.Locator("textarea.input").PressAsync("Enter");
        await Assertions.Expect(page.Locator(".line.mine.pending")).ToHaveCountAsync(1, new() { Timeout = 15_000 });
        await page.EvaluateAsync("() => new Promise(r => setTimeout(r, 2000))");
        Assert.Equal(1, await _app.QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == "shop")));
        Assert.Contains("Sent while the chat was off", await page.EvaluateAsync<string>("() => localStorage.getItem('crm-webchat:shop')"), StringComparison.Ordinal);

        Assert.True((await admin.PutAsJsonAsync("/api/v1/admin/channels/shop", new { kind = "webchat", name = "Shop chat", enabled = true, settings = new { allowedOrigins = new[] { _origin } } })).IsSuccessStatusCode);
        // Reloaded (the connection of the old page was refused for good), the kept message goes out once.
        var (again, _) = await OpenSiteAsync(context);
        await Eventually.WaitForAsync(
            () => _app.QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == "shop" && m.Text == "Sent while the chat was off")),
            n => n == 1, timeout: TimeSpan.FromSeconds(60), what: "the kept message stored");
        await Assertions.Expect(again.Locator(".line.mine:not(.pending)")).ToHaveCountAsync(2);
    }
}
