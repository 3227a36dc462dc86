using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.AgentConsole;
using Crm.Service.Contracts;
using Crm.Service.Tests.Email;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Crm.Service.Tests.WebChat;

/// <summary>
/// The widget's forms in headless chromium on a page of another origin: the pre-chat form (name, email), the code entry
/// for the email proof (the code read from the customer's real mailbox: Postfix and Dovecot), the transcript button
/// (shown only for a proven address) and the offline form when no agent of the widget's team is online.
/// </summary>
public sealed class WidgetFormsBrowserTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private MailServer _mail = null!;
    private CrmApp _app = null!;
    private WebApplication _site = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;
    private string _origin = "";

    public async Task InitializeAsync()
    {
        _mail = await MailServer.StartAsync();
        var port = FreePorts.Next();
        _app = new CrmApp(_data.Path, new Dictionary<string, string?> { ["Channels:WebChat:RequestsPerMinutePerAddress"] = "100000" });
        _app.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        _app.StartServer();

        var sitePort = FreePorts.Next();
        _origin = $"http://127.0.0.1:{sitePort}";
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(_origin);
        _site = builder.Build();
        _site.MapGet("/", (HttpContext http) => Results.Content($$"""
            <!doctype html>
            <html lang="{{(http.Request.Query["lang"] == "zh" ? "zh-CN" : "en")}}"><head><meta charset="utf-8"><title>Shop</title>
            <style>button, input, textarea, form, p, div { display: none !important; color: red !important; }</style></head>
            <body><h1>Example shop</h1>
            <script src="http://127.0.0.1:{{port}}/widget.js" data-channel="shop" async></script>
            </body></html>
            """, "text/html; charset=utf-8"));
        await _site.StartAsync();

        using var admin = _app.Admin();
        var support = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() });
        Assert.True(support.IsSuccessStatusCode, await support.Content.ReadAsStringAsync());
        var created = await admin.PutAsJsonAsync("/api/v1/admin/channels/shop", new
        {
            kind = "webchat",
            name = "Shop chat",
            settings = new { allowedOrigins = new[] { _origin }, title = new { en = "Shop help", zh = "商店客服" }, preChatForm = true, emailChannel = "support" },
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
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 30_000 };

    private void AgentOnline() => _app.Services.GetRequiredService<AgentPresence>().Connected("agent-ann", "Ann", "console-1");

    private async Task<(IPage Page, List<string> Dialogs)> OpenAsync(IBrowserContext context, string path = "/")
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
        // Once the config is read (the colour is set), the chat opens by itself for a visitor who left it open.
        await page.WaitForFunctionAsync("() => document.querySelector('[data-crm-webchat]')?.style.getPropertyValue('--crm-accent')", null, new() { Timeout = 30_000 });
        if (await page.Locator(".panel").IsHiddenAsync())
            await page.Locator(".launcher").ClickAsync();
        return (page, dialogs);
    }

    /// <summary>The code in the <paramref name="nth"/> mail of the customer's mailbox.</summary>
    private async Task<string> CodeAsync(int nth)
    {
        var mails = await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Count >= nth, timeout: TimeSpan.FromSeconds(60), what: $"mail {nth}");
        return Regex.Match(mails[nth - 1].Message.TextBody ?? "", @"is (\d{6})").Groups[1].Value;
    }

    private async Task<List<MimeKit.MimeMessage>> MailsAsync(int count) =>
        [.. (await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Count >= count, timeout: TimeSpan.FromSeconds(60), what: $"{count} mails")).Select(m => m.Message)];

    /// <summary>The customer of the ticket the widget's conversation opened (null before the first message).</summary>
    private Task<Crm.Service.Grains.Records.CustomerRecord?> CustomerOfTheChatAsync() => _app.QueryAsync(async db =>
    {
        var number = await db.Messages.Where(m => m.ChannelAccountId == "shop").Select(m => (long?)m.TicketNumber).FirstOrDefaultAsync();
        if (number is null)
            return null;
        var customerId = await db.Tickets.Where(t => t.Number == number).Select(t => t.CustomerId).SingleAsync();
        return await db.Customers.SingleOrDefaultAsync(c => c.Id == customerId);
    });

    [Fact]
    public async Task The_pre_chat_form_mails_a_code_the_visitor_enters_and_only_then_offers_the_transcript_by_email()
    {
        AgentOnline();
        await using var context = await _browser.NewContextAsync(new() { Locale = "en-US" });
        var (page, dialogs) = await OpenAsync(context);

        // The pre-chat form first: the composer waits behind it; the transcript is not offered to anyone unproven.
        var intro = page.Locator("form.intro");
        await Assertions.Expect(intro).ToBeVisibleAsync(Visible);
        await Assertions.Expect(page.Locator("form.composer")).ToBeHiddenAsync();
        await Assertions.Expect(intro.Locator("textarea.question")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator(".transcript")).ToBeHiddenAsync();

        // A malformed address is refused with the server's sentence, and the form stays.
        await intro.Locator("input.name").FillAsync("Carol");
        await intro.Locator("input.email").FillAsync("carol at example");
        await intro.Locator(".intro-submit").ClickAsync();
        await Assertions.Expect(intro.Locator(".form-status")).ToHaveTextAsync("Please enter an email address like name@example.com.", new() { Timeout = 30_000 });
        await Assertions.Expect(intro).ToBeVisibleAsync();

        await intro.Locator("input.email").FillAsync(" Customer@Example.test ");
        await intro.Locator(".intro-submit").ClickAsync();
        var verify = page.Locator("form.verify");
        await Assertions.Expect(verify).ToBeVisibleAsync(Visible);
        await Assertions.Expect(verify.Locator(".verify-text")).ToHaveTextAsync($"We sent a code to {MailServer.Customer}. Enter it here to confirm the address.");
        await Assertions.Expect(page.Locator("form.composer")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator(".transcript")).ToBeHiddenAsync();
        var code = await CodeAsync(1);

        // The visitor chats meanwhile; the message carries the name from the form.
        await page.Locator("textarea.input").FillAsync("Where is my order?");
        await page.Locator("textarea.input").PressAsync("Enter");
        await Assertions.Expect(page.Locator(".line.mine:not(.pending)")).ToHaveCountAsync(1, new() { Timeout = 30_000 });

        // A wrong code says how many tries are left; the right one proves the address.
        await verify.Locator("input.code").FillAsync(code == "000000" ? "111111" : "000000");
        await verify.Locator(".code-submit").ClickAsync();
        await Assertions.Expect(verify.Locator(".form-status")).ToHaveTextAsync("That code is not right. 4 more tries for this code.", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator(".transcript")).ToBeHiddenAsync();
        await verify.Locator("input.code").FillAsync(code);
        await verify.Locator(".code-submit").ClickAsync();
        await Assertions.Expect(verify).ToBeHiddenAsync(new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator(".status")).ToHaveTextAsync($"Confirmed: {MailServer.Customer}");

        // The conversation now belongs to the address's customer, named from the form.
        var customer = await Eventually.WaitForAsync(CustomerOfTheChatAsync, c => c is not null && c.MergedInto == null && c.Name == "Carol", what: "the ticket's customer is Carol");
        var emailKey = GrainKeys.Identity(IdentityKind.Email, MailServer.Customer, "shop");
        Assert.Equal(customer!.Id, await _app.QueryAsync(db => db.Identities.Where(i => i.Key == emailKey).Select(i => i.CustomerId).SingleAsync()));

        // The transcript button, now offered, mails the chat to the proven address.
        await page.Locator(".transcript").ClickAsync();
        await Assertions.Expect(page.Locator(".status")).ToHaveTextAsync($"The chat was sent to {MailServer.Customer}.", new() { Timeout = 30_000 });
        var transcript = (await MailsAsync(2))[1];
        Assert.Contains("Where is my order?", transcript.TextBody, StringComparison.Ordinal);

        // A new page view: no form again, the transcript still offered.
        var (again, dialogsAgain) = await OpenAsync(context);
        await Assertions.Expect(again.Locator("form.composer")).ToBeVisibleAsync(Visible);
        await Assertions.Expect(again.Locator("form.intro")).ToBeHiddenAsync();
        await Assertions.Expect(again.Locator(".transcript")).ToBeVisibleAsync();
        Assert.Empty(dialogs);
        Assert.Empty(dialogsAgain);
    }

    [Fact]
    public async Task With_no_agent_of_the_team_online_the_offline_form_opens_a_ticket_and_the_answer_comes_by_email()
    {
        // An agent is online, but not in the widget's team.
        using (var admin = _app.Admin())
        {
            await _app.Services.GetRequiredService<Crm.Service.Infrastructure.Teams.TeamDirectory>().SaveAsync("billing", "Billing", restricted: false, ["agent-bob"], CancellationToken.None);
            var widget = await admin.PutAsJsonAsync("/api/v1/admin/channels/shop", new
            {
                kind = "webchat",
                name = "Shop chat",
                settings = new { allowedOrigins = new[] { _origin }, title = new { en = "Shop help" }, preChatForm = true, emailChannel = "support", team = "billing" },
            });
            Assert.True(widget.IsSuccessStatusCode, await widget.Content.ReadAsStringAsync());
        }
        AgentOnline();

        await using var context = await _browser.NewContextAsync(new() { Locale = "en-US" });
        var (page, dialogs) = await OpenAsync(context);
        var intro = page.Locator("form.intro");
        await Assertions.Expect(intro).ToBeVisibleAsync(Visible);
        await Assertions.Expect(intro.Locator(".intro-text")).ToHaveTextAsync("No one is online right now. Leave your question and your email address: we will send you a code to confirm it, and answer by email once it is confirmed.");
        await Assertions.Expect(intro.Locator("textarea.question")).ToBeVisibleAsync();
        await Assertions.Expect(intro.Locator(".intro-skip")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator("form.composer")).ToBeHiddenAsync();

        // The address is required here: the answer goes there.
        await intro.Locator("textarea.question").FillAsync("My parcel never came.");
        await intro.Locator(".intro-submit").ClickAsync();
        await Assertions.Expect(intro.Locator(".form-status")).ToHaveTextAsync("Please enter your email address, so we can answer you.");
        Assert.Equal(0, await _app.QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == "shop")));

        await intro.Locator("input.name").FillAsync("Carol");
        await intro.Locator("input.email").FillAsync(MailServer.Customer);
        await intro.Locator(".intro-submit").ClickAsync();
        // The question opened a ticket at once; the address still has to be proven.
        var ticket = await Eventually.WaitForAsync(
            () => _app.QueryAsync(db => db.Messages.Where(m => m.ChannelAccountId == "shop" && m.Text == "My parcel never came.").Select(m => (long?)m.TicketNumber).SingleOrDefaultAsync()),
            n => n is not null, what: "the offline question stored") ?? 0;
        Assert.Equal(TicketStatus.New, await _app.QueryAsync(db => db.Tickets.Where(t => t.Number == ticket).Select(t => t.Status).SingleAsync()));
        var verify = page.Locator("form.verify");
        await Assertions.Expect(verify).ToBeVisibleAsync(Visible);
        await Assertions.Expect(page.Locator(".line.mine")).ToContainTextAsync("My parcel never came.");
        // Review W5: until the code is entered, the widget promises no mail (and none is sent: see the proven-only path).
        await Assertions.Expect(verify.Locator(".verify-text")).ToHaveTextAsync(
            $"We sent a code to {MailServer.Customer}. Enter it here to confirm the address. We answer by email only to a confirmed address; until then, the answer waits here in the chat.");
        await verify.Locator("input.code").FillAsync(await CodeAsync(1));
        await verify.Locator(".code-submit").ClickAsync();
        await Assertions.Expect(page.Locator(".status")).ToHaveTextAsync($"Thank you. We will answer by email at {MailServer.Customer}.", new() { Timeout = 30_000 });

        // The visitor leaves; the agent's answer goes to the proven address.
        await context.CloseAsync();
        var conversation = await _app.QueryAsync(db => db.Conversations.Where(c => c.ChannelAccountId == "shop").Select(c => c.ThreadKey).SingleAsync());
        await Eventually.WaitForAsync(
            () => _app.Grains.GetGrain<Crm.Connectors.WebChat.IWebChatSessionGrain>(GrainKeys.Conversation("shop", conversation)).HasVisitorAsync(),
            live => !live, timeout: TimeSpan.FromSeconds(60), what: "the visitor gone");
        using var agent = await _app.AgentAsync();
        Assert.True((await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text = "It is at the depot; it arrives tomorrow." })).IsSuccessStatusCode);
        var answer = (await MailsAsync(2))[1];
        Assert.Contains("It is at the depot; it arrives tomorrow.", answer.TextBody, StringComparison.Ordinal);
        Assert.Empty(dialogs);
    }

    [Fact]
    public async Task Hostile_strings_in_the_forms_are_shown_as_text_and_never_run()
    {
        AgentOnline();
        var blns = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Corpora", "hostile", "blns", "blns.json")));
        var vectors = blns.RootElement.EnumerateArray().Select(v => v.GetString()!).Where(s => s.Contains("<script", StringComparison.OrdinalIgnoreCase) || s.Contains("onerror", StringComparison.OrdinalIgnoreCase)).Take(5).ToList();
        vectors.Add("<img src=x onerror=alert('name')>\u202Egnp.exe");
        await using var context = await _browser.NewContextAsync(new() { Locale = "en-US" });
        var (page, dialogs) = await OpenAsync(context);
        var intro = page.Locator("form.intro");
        await Assertions.Expect(intro).ToBeVisibleAsync(Visible);

        // A hostile "address" is refused; the refusal is text, and nothing is mailed.
        foreach (var vector in vectors)
        {
            await intro.Locator("input.email").FillAsync(vector);
            await intro.Locator(".intro-submit").ClickAsync();
            await Assertions.Expect(intro.Locator(".form-status")).ToHaveTextAsync("Please enter an email address like name@example.com.", new() { Timeout = 30_000 });
            await intro.Locator(".form-status").EvaluateAsync("s => s.textContent = ''");
        }
        // A hostile name goes with the message as text; the code mail and the widget show the address as text.
        await intro.Locator("input.name").FillAsync(vectors[^1]);
        await intro.Locator("input.email").FillAsync(MailServer.Customer);
        await intro.Locator(".intro-submit").ClickAsync();
        await Assertions.Expect(page.Locator("form.verify")).ToBeVisibleAsync(Visible);
        await page.Locator("textarea.input").FillAsync(vectors[0]);
        await page.Locator("textarea.input").PressAsync("Enter");
        await Assertions.Expect(page.Locator(".line.mine:not(.pending) .bubble")).ToHaveTextAsync(vectors[0], new() { Timeout = 30_000 });
        var customer = await Eventually.WaitForAsync(CustomerOfTheChatAsync, c => c is not null, what: "the visitor's customer");
        // Kept as text, without the bidi override.
        Assert.Equal("<img src=x onerror=alert('name')>gnp.exe", customer!.Name);

        var root = page.Locator("[data-crm-webchat]");
        Assert.Equal(0, await root.EvaluateAsync<int>("h => h.shadowRoot.querySelectorAll('script, iframe, img, object, embed').length"));
        Assert.Equal(0, await root.EvaluateAsync<int>("h => [...h.shadowRoot.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length"));
        Assert.Equal(1, await page.EvaluateAsync<int>("() => document.querySelectorAll('script').length"));
        Assert.Empty(dialogs);
        Assert.Single(await MailsAsync(1));
        Assert.Single(await _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword));
    }

    [Fact]
    public async Task The_forms_speak_chinese_on_a_chinese_page()
    {
        AgentOnline();
        await using var context = await _browser.NewContextAsync(new() { Locale = "en-US" });
        var (page, _) = await OpenAsync(context, "/?lang=zh");
        await Assertions.Expect(page.Locator("form.intro .intro-submit")).ToHaveTextAsync("开始聊天", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("form.intro input.name")).ToHaveAttributeAsync("placeholder", "您的姓名");
    }
}
