using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Playwright;

namespace Crm.Service.Tests.Console;

/// <summary>
/// The console in Debian's headless chromium (/usr/bin/chromium; Playwright downloads no browser), against the whole
/// service on a real Kestrel port. Set CRM_SCREENSHOT_DIR to save the queue, ticket and customer pages (docs/screenshots).
/// </summary>
public sealed class ConsoleBrowserTests : BrowserTest
{
    private const string Agent = "agent@example.com";
    protected override async Task SetUpAsync()
    {
        await App.CreateApiChannelAsync();
        await ConsoleBrowser.CreateUserAsync(App, Agent, ConsoleRoles.Agent);
    }

    private async Task<JsonElement> ReceiveAsync(string id, string sender, string? name, string text, string? html = null, string? subject = "Printer")
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name }, subject, text, html });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private async Task<IPage> SignedInPageAsync()
    {
        // Opening "/" signed out lands on the sign-in page, and signing in goes on to the queues.
        return await SignedInPageAsync(Agent, arrivedAt: new Regex("/Queues"), height: 800);
    }

    private static Task WaitForLiveAsync(IPage page) =>
        page.Locator("#live-status[data-state='online']").WaitForAsync(new() { State = WaitForSelectorState.Attached });

    private static async Task ScreenshotAsync(IPage page, string name)
    {
        if (Environment.GetEnvironmentVariable("CRM_SCREENSHOT_DIR") is { Length: > 0 } directory)
            await page.ScreenshotAsync(new() { Path = Path.Combine(directory, name), FullPage = true });
    }

    [Fact]
    public async Task An_agent_signs_in_replies_to_an_api_ticket_and_sees_new_messages_and_counts_live()
    {
        var ticket = await ReceiveAsync("wa-1", "+15550100001", "Alice Example", "My order #4711 never arrived.");
        var number = ticket.GetProperty("ticketNumber").GetInt64();
        await ReceiveAsync("wa-2", "+15550100002", "Bob Beispiel", "Wie ändere ich meine Adresse?", subject: "Adresse");
        await ReceiveAsync("wa-3", "+15550100003", "王小明", "发票抬头需要修改。", subject: "发票");
        var page = await SignedInPageAsync();
        await WaitForLiveAsync(page);
        var openCount = page.Locator(".count[data-queue='Open']");
        await Assertions.Expect(openCount).ToHaveTextAsync("3");
        await ScreenshotAsync(page, "queues.png");

        // A new ticket arrives while the queue is open: its count moves without a reload.
        await ReceiveAsync("wa-4", "+15550100004", "Carol", "Hello?", subject: "Question");
        await Assertions.Expect(openCount).ToHaveTextAsync("4");
        await Assertions.Expect(page.Locator("#queue-news")).ToBeVisibleAsync();

        await page.GotoAsync($"{BaseUrl}/Tickets/{number}");
        await WaitForLiveAsync(page);
        await Assertions.Expect(page.Locator("#timeline")).ToContainTextAsync("My order #4711 never arrived.");
        await page.GetByLabel("Reply to the customer").FillAsync("Sorry! A new parcel is on its way.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send reply" }).ClickAsync();
        var outbound = page.Locator(".entry.d-Outbound").Filter(new() { HasText = "A new parcel is on its way" });
        await Assertions.Expect(outbound).ToHaveCountAsync(1);
        await Assertions.Expect(outbound.Locator("[data-delivery]")).ToHaveAttributeAsync("data-delivery", new Regex("Queued|Sent|Delivered|Failed"));

        // The customer answers while the ticket is open: the message appears without a reload.
        await WaitForLiveAsync(page);
        await ReceiveAsync("wa-5", "+15550100001", "Alice Example", "Thanks, got the tracking number.");
        await Assertions.Expect(page.Locator("#timeline")).ToContainTextAsync("Thanks, got the tracking number.");
        await ScreenshotAsync(page, "ticket.png");

        await page.GetByRole(AriaRole.Link, new() { Name = "Alice Example" }).First.ClickAsync();
        await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("Alice Example");
        await ScreenshotAsync(page, "customer.png");
    }

    [Fact]
    public async Task An_agent_logs_a_call_from_the_ticket_page_and_sees_it_in_the_timeline()
    {
        var number = (await ReceiveAsync("call-1", "carol", "Carol Caller", "Please call me back.")).GetProperty("ticketNumber").GetInt64();
        var page = await SignedInPageAsync();
        await page.GotoAsync($"{BaseUrl}/Tickets/{number}");
        await page.GetByText("Log a call").ClickAsync();
        await page.Locator("#CallDirection").SelectOptionAsync("out");
        await page.GetByLabel("Phone number").FillAsync("+1 555 010 7788");
        await page.Locator("#CallDuration").FillAsync("3:15");
        await page.Locator("#CallResult").FillAsync("Solved on the phone");
        await page.Locator("#CallSummary").FillAsync("Walked through the reset steps.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log call" }).ClickAsync();
        var call = page.Locator(".entry.call");
        await Assertions.Expect(call).ToHaveCountAsync(1);
        await Assertions.Expect(call).ToContainTextAsync("Call out: +15550107788");
        await Assertions.Expect(call).ToContainTextAsync("Walked through the reset steps.");
        await Assertions.Expect(call.Locator(".channel")).ToHaveTextAsync("phone");
        // Nothing is sent: a call shows no delivery status.
        await Assertions.Expect(call.Locator("[data-delivery]")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task Xss_payloads_in_messages_html_bodies_and_customer_names_never_run()
    {
        // Every vector of the HtmlSanitizer corpus (tests/Crm.Service.Tests/Corpora/hostile) as text and as HTML body,
        // plus a few classics, from a customer whose name is itself a payload.
        var corpus = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Corpora", "hostile", "sanitizer-vectors", "htmlsanitizer-tests.json")));
        var vectors = corpus.RootElement.EnumerateArray().Select(v => v.GetProperty("input").GetString()!)
            .Concat(["<script>alert('xss-script')</script>", "<img src=x onerror=alert('xss-img')>", "<svg onload=alert('xss-svg')>",
                "\"><iframe srcdoc=\"<script>parent.alert('xss-frame')</script>\">", "<a href=\"javascript:alert('xss-link')\">click</a>"])
            .ToList();
        const string hostileName = "<img src=x onerror=alert('xss-name')><script>alert('xss-name')</script>";
        long number = 0;
        for (var i = 0; i < vectors.Count; i++)
            number = (await ReceiveAsync($"x-{i}", "+15550109999", hostileName, vectors[i], html: vectors[i], subject: i == 0 ? "<script>alert('xss-subject')</script>" : null))
                .GetProperty("ticketNumber").GetInt64();
        var customer = await App.QueryAsync(db => Task.FromResult(db.Tickets.Single(t => t.Number == number).CustomerId));

        var page = await SignedInPageAsync();
        var dialogs = new List<string>();
        page.Dialog += async (_, dialog) =>
        {
            lock (dialogs)
                dialogs.Add($"{dialog.Type}:{dialog.Message}");
            await dialog.DismissAsync();
        };
        foreach (var path in new[] { "/Queues/Open", $"/Tickets/{number}", $"/Tickets/{number}?cursor=", $"/Customers/{customer}" })
        {
            await page.GotoAsync(BaseUrl + path, new() { WaitUntil = WaitUntilState.NetworkIdle });
            // Also open every HTML body (they are collapsed when a text version exists).
            foreach (var details in await page.Locator("details.html").AllAsync())
                await details.EvaluateAsync("d => d.open = true");
            await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
            var foreignScripts = await page.EvaluateAsync<int>("() => [...document.querySelectorAll('script')].filter(s => !(s.getAttribute('src') || '').startsWith('/js/console.js')).length");
            var handlers = await page.EvaluateAsync<int>("() => [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length");
            Assert.Equal(0, foreignScripts);
            Assert.Equal(0, handlers);
            if (path.StartsWith("/Tickets/", StringComparison.Ordinal))
            {
                Assert.Contains(hostileName, await page.Locator(".ticket-head").InnerTextAsync(), StringComparison.Ordinal);
                // HTML bodies render only in frames without scripts.
                Assert.All(await page.Locator("#timeline iframe").AllAsync(), frame => Assert.Equal("allow-same-origin", frame.GetAttributeAsync("sandbox").GetAwaiter().GetResult()));
                // Nor inside the frames: no script element survived and none ran (the dialogs below stay empty).
                Assert.Equal(0, await page.EvaluateAsync<int>("() => [...document.querySelectorAll('#timeline iframe')].map(f => f.contentDocument?.querySelectorAll('script, [onerror], [onload]').length ?? 0).reduce((a, b) => a + b, 0)"));
            }
        }
        await page.EvaluateAsync("() => new Promise(r => setTimeout(r, 500))");
        Assert.Empty(dialogs);
    }

    [Fact]
    public async Task A_live_change_keeps_an_agent_reading_an_older_page_where_they_are()
    {
        var number = (await ReceiveAsync("old-0", "+15550100009", "Dora", "message 0")).GetProperty("ticketNumber").GetInt64();
        for (var i = 1; i < 55; i++)
            await ReceiveAsync($"old-{i}", "+15550100009", "Dora", $"message {i}");
        var page = await SignedInPageAsync();
        await page.GotoAsync($"{BaseUrl}/Tickets/{number}");
        await page.GetByRole(AriaRole.Link, new() { Name = "Older messages" }).ClickAsync();
        await page.ArrivedAtAsync(new Regex("cursor="), "#timeline");
        await WaitForLiveAsync(page);
        await Assertions.Expect(page.Locator("#timeline")).ToContainTextAsync("message 0");

        await ReceiveAsync("old-new", "+15550100009", "Dora", "a brand new message");

        await Assertions.Expect(page.Locator("#ticket-news")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#timeline")).ToContainTextAsync("message 0");
        await Assertions.Expect(page.Locator("#timeline")).Not.ToContainTextAsync("a brand new message");
    }

    [Fact]
    public async Task Canned_responses_insert_by_picker_and_by_slash_shortcut_and_keyboard_shortcuts_work()
    {
        var library = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Crm.Service.Infrastructure.Replies.ReplyLibrary>(App.Services);
        var (_, error) = await library.SaveCannedAsync(null, Crm.Service.Infrastructure.Replies.ReplyLibrary.Shared, "thanks", "Thanks",
            "Thanks {{customer.first_name}}, ticket {{ticket.number}}.", "test", CancellationToken.None);
        Assert.Null(error);
        await library.SaveCannedAsync(null, Crm.Service.Infrastructure.Replies.ReplyLibrary.Shared, "bye", "Bye", "Bye <img src=x onerror=alert(1)>", "test", CancellationToken.None);
        var first = (await ReceiveAsync("k1", "+15550100011", "Kim Park", "first")).GetProperty("ticketNumber").GetInt64();
        var second = (await ReceiveAsync("k2", "+15550100012", "Lee", "second")).GetProperty("ticketNumber").GetInt64();
        var dialogs = new List<string>();
        var page = await SignedInPageAsync();
        page.Dialog += (_, dialog) => dialogs.Add(dialog.Message);
        await page.GotoAsync($"{BaseUrl}/Tickets/{second}");
        await WaitForLiveAsync(page);

        // Keyboard: r and n focus the reply and the note boxes.
        await page.Locator("body").ClickAsync(new() { Position = new() { X = 5, Y = 300 } });
        await page.Keyboard.PressAsync("r");
        await Assertions.Expect(page.Locator("#ReplyText")).ToBeFocusedAsync();
        await page.Locator("body").ClickAsync(new() { Position = new() { X = 5, Y = 300 } });
        await page.Keyboard.PressAsync("n");
        await Assertions.Expect(page.Locator("#NoteText")).ToBeFocusedAsync();

        // "/thanks" then Tab expands in place, filled for this ticket; the picker inserts at the caret.
        var reply = page.Locator("#ReplyText");
        await reply.ClickAsync();
        await page.Keyboard.TypeAsync("Hello. /than");
        await page.Keyboard.PressAsync("Tab");
        await Assertions.Expect(reply).ToHaveValueAsync($"Hello. Thanks Lee, ticket #{second}.");
        await Assertions.Expect(reply).ToBeFocusedAsync();
        await page.Locator("#canned-picker").SelectOptionAsync("bye");
        await page.Locator("#canned-insert").ClickAsync();
        await Assertions.Expect(reply).ToHaveValueAsync($"Hello. Thanks Lee, ticket #{second}.Bye <img src=x onerror=alert(1)>");
        Assert.Equal(0, await page.Locator("#reply-form img").CountAsync());
        await page.GetByRole(AriaRole.Button, new() { Name = "Send reply" }).ClickAsync();
        await Assertions.Expect(page.Locator("#timeline")).ToContainTextAsync($"Thanks Lee, ticket #{second}.");

        // j goes to the next ticket of All open; / opens search.
        await page.Locator("body").ClickAsync(new() { Position = new() { X = 5, Y = 300 } });
        await page.Keyboard.PressAsync("j");
        await page.ArrivedAtAsync(new Regex($"/Tickets/{first}$"), "#timeline");
        await page.Locator("body").ClickAsync(new() { Position = new() { X = 5, Y = 300 } });
        await page.Keyboard.PressAsync("/");
        await page.ArrivedAtAsync(new Regex("/Search"), "#search-box");
        await Assertions.Expect(page.Locator("#search-box")).ToBeFocusedAsync();
        Assert.Empty(dialogs);
    }
}
