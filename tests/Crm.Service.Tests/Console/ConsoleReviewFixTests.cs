using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>Fixes of the cold review of the console's first pass (/work/review/console.md, C1–C4, C6, C7), each
/// with a test that fails without its fix.</summary>
public sealed class ConsoleReviewFixTests : IAsyncLifetime
{
    /// <summary>Requests carrying this header come from that address (TestServer has none of its own).</summary>
    private const string AddressHeader = "X-Test-Client-Address";

    private readonly TempDirectory _data = new();
    private CrmApp App = null!;

    public async Task InitializeAsync()
    {
        App = new CrmApp(_data.Path, new Dictionary<string, string?> { ["Console:SessionRecheckInterval"] = "00:00:00" },
            services: services => services.AddSingleton<IStartupFilter, ClientAddressFromHeader>());
        await App.CreateApiChannelAsync();
    }

    public async Task DisposeAsync()
    {
        await App.DisposeAsync();
        _data.Dispose();
    }

    private sealed class ClientAddressFromHeader : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((http, inner) =>
            {
                if (http.Request.Headers.TryGetValue(AddressHeader, out var address))
                    http.Connection.RemoteIpAddress = IPAddress.Parse(address.ToString());
                return inner(http);
            });
            next(app);
        };
    }

    private ConsoleBrowser From(string address)
    {
        var browser = ConsoleBrowser.Open(App);
        browser.Client.DefaultRequestHeaders.Add(AddressHeader, address);
        return browser;
    }

    private async Task<long> TicketAsync(string id)
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = "alice", name = "Alice" }, subject = "Printer", text = "It is on fire" });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private HubConnection Hub(ConsoleBrowser browser) => browser.AgentHub(App);

    // C1 (high)
    [Fact]
    public async Task A_stranger_can_neither_guess_sign_ins_at_speed_nor_lock_the_owner_out()
    {
        await ConsoleBrowser.CreateUserAsync(App, "agent@example.com", ConsoleRoles.Agent);
        using var stranger = From("203.0.113.9");
        var answers = new List<HttpStatusCode>();
        for (var i = 0; i < 30; i++)
            answers.Add((await stranger.SubmitAsync("/Account/Login", new() { ["Email"] = "agent@example.com", ["Password"] = "guess number " + i })).StatusCode);
        var setup = await stranger.PostWithoutTokenAsync("/Setup", new() { ["SetupCode"] = "x" });

        Assert.Contains(HttpStatusCode.TooManyRequests, answers);
        Assert.Equal(HttpStatusCode.TooManyRequests, setup.StatusCode);
        Assert.Equal("60", setup.Headers.RetryAfter!.ToString());
        // The owner, elsewhere, signs in at once.
        using var owner = From("198.51.100.7");
        var signIn = await owner.SubmitAsync("/Account/Login", new() { ["Email"] = "agent@example.com", ["Password"] = ConsoleBrowser.Password });
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        // From the stranger's address even the right password is refused for now.
        using var sameAddress = From("203.0.113.9");
        await Task.Delay(0);
        Assert.False(App.Services.GetRequiredService<SignInThrottle>().IsBlocked("agent@example.com", "198.51.100.7"));
        Assert.True(App.Services.GetRequiredService<SignInThrottle>().IsBlocked("agent@example.com", "203.0.113.9"));
    }

    // C7 (low, fixed with C1): the reviewer's test
    [Fact]
    public async Task Sign_in_answers_alike_for_an_existing_and_an_unknown_account()
    {
        await ConsoleBrowser.CreateUserAsync(App, "agent@example.com", ConsoleRoles.Agent);
        string Last(string body) => body.Contains("locked", StringComparison.Ordinal) ? "locked" : body.Contains("Wrong email or password", StringComparison.Ordinal) ? "wrong" : "other";
        async Task<string> TryAsync(string email, string address)
        {
            using var browser = From(address);
            var result = "";
            for (var i = 0; i < 6; i++)
                result = Last(await (await browser.SubmitAsync("/Account/Login", new() { ["Email"] = email, ["Password"] = "not the password 1" })).Content.ReadAsStringAsync());
            return result;
        }

        Assert.Equal("wrong", await TryAsync("agent@example.com", "192.0.2.1"));
        Assert.Equal("wrong", await TryAsync("nobody@example.com", "192.0.2.2"));
    }

    // C2 (medium): the reviewer's scenario, then the same with the form's shown values
    [Fact]
    public async Task Saving_a_stale_side_form_does_not_undo_another_agents_assignment()
    {
        var number = await TicketAsync("m-1");
        using var a = await ConsoleBrowser.SignedInAsync(App, "a@example.com", ConsoleRoles.Agent);
        using var b = await ConsoleBrowser.SignedInAsync(App, "b@example.com", ConsoleRoles.Agent);
        var shown = new Dictionary<string, string> { ["OriginalStatus"] = "New", ["OriginalPriority"] = "Normal", ["OriginalAssignee"] = "", ["OriginalTeam"] = "" };
        Assert.Contains("name=\"OriginalStatus\" value=\"New\"", await a.PageAsync($"/Tickets/{number}"), StringComparison.Ordinal);

        var taken = await b.SubmitAsync($"/Tickets/{number}", new(shown) { ["NewStatus"] = "Open", ["NewPriority"] = "Normal", ["NewAssignee"] = "b@example.com", ["NewTeam"] = "" }, $"/Tickets/{number}?handler=Change");
        // A's stale page: without the shown values (the reviewer's post), then with them, raising only the priority.
        var bare = await a.SubmitAsync($"/Tickets/{number}", new() { ["NewStatus"] = "New", ["NewPriority"] = "High", ["NewAssignee"] = "", ["NewTeam"] = "" }, $"/Tickets/{number}?handler=Change");
        var raised = await a.SubmitAsync($"/Tickets/{number}", new(shown) { ["NewStatus"] = "New", ["NewPriority"] = "High", ["NewAssignee"] = "", ["NewTeam"] = "" }, $"/Tickets/{number}?handler=Change");
        // A's stale page also tries to resolve it: B changed the status meanwhile, so A is asked to decide again.
        var resolve = await a.SubmitAsync($"/Tickets/{number}", new(shown) { ["NewStatus"] = "Resolved", ["NewPriority"] = "Normal", ["NewAssignee"] = "", ["NewTeam"] = "" }, $"/Tickets/{number}?handler=Change");

        Assert.Equal(HttpStatusCode.Redirect, taken.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, bare.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, raised.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, resolve.StatusCode);
        Assert.Contains("Someone else changed the status", await resolve.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var ticket = await App.QueryAsync(db => Task.FromResult(db.Tickets.Single(t => t.Number == number)));
        Assert.Equal((TicketStatus.Open, TicketPriority.High, "b@example.com"), (ticket.Status, ticket.Priority, ticket.Assignee));
    }

    // C3 (medium): the reviewer's test, and the same with the form's one-time id
    [Fact]
    public async Task A_double_submitted_reply_is_sent_once()
    {
        var number = await TicketAsync("m-2");
        using var a = await ConsoleBrowser.SignedInAsync(App, "a@example.com", ConsoleRoles.Agent);
        async Task<HttpResponseMessage[]> TwiceAsync(bool withRequestId, string text)
        {
            var html = await a.PageAsync($"/Tickets/{number}");
            var token = Regex.Match(html, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
            var form = new Dictionary<string, string> { ["ReplyText"] = text, ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token) };
            if (withRequestId)
                form["RequestId"] = Regex.Match(html, "name=\"RequestId\" value=\"([0-9a-f]{32})\"").Groups[1].Value;
            var first = a.Client.PostAsync($"/Tickets/{number}?handler=Reply", new FormUrlEncodedContent(form));
            var second = a.Client.PostAsync($"/Tickets/{number}?handler=Reply", new FormUrlEncodedContent(form));
            return await Task.WhenAll(first, second);
        }

        var bare = await TwiceAsync(withRequestId: false, "On our way");
        var withId = await TwiceAsync(withRequestId: true, "Arrived");
        var again = await TwiceAsync(withRequestId: true, "Arrived"); // a new page: a new reply, even with the same text

        Assert.All(bare.Concat(withId).Concat(again), r => Assert.Equal(HttpStatusCode.Redirect, r.StatusCode));
        var outbound = await App.QueryAsync(db => Task.FromResult(db.Messages.Where(m => m.TicketNumber == number && m.Direction == MessageDirection.Outbound).Select(m => m.Text).ToList()));
        Assert.Equal(["Arrived", "Arrived", "On our way"], outbound.Order());
    }

    // C4 (medium)
    [Fact]
    public async Task An_admin_disables_a_person_whose_pages_hub_and_keys_stop_at_once_and_changes_roles()
    {
        using var admin = await ConsoleBrowser.SignedInAsync(App, "admin@example.com", ConsoleRoles.Admin);
        using var x = await ConsoleBrowser.SignedInAsync(App, "x@example.com", ConsoleRoles.Agent);
        using var y = await ConsoleBrowser.SignedInAsync(App, "y@example.com", ConsoleRoles.Agent);
        var created = await x.SubmitAsync("/Profile", new() { ["KeyLabel"] = "script", ["KeyRole"] = "agent" }, "/Profile?handler=CreateKey");
        var key = Regex.Match(await created.Content.ReadAsStringAsync(), "<code id=\"created-key\">([^<]+)</code>").Groups[1].Value;
        await using var hub = Hub(x);
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.Closed += _ => { closed.TrySetResult(); return Task.CompletedTask; };
        await hub.StartAsync();
        string IdOf(string email)
        {
            using var scope = App.Services.CreateScope();
            return scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>().FindByEmailAsync(email).Result!.Id;
        }

        var self = await admin.SubmitAsync("/Admin", new() { ["PersonId"] = IdOf("admin@example.com") }, "/Admin?handler=Disable");
        var disabled = await admin.SubmitAsync("/Admin", new() { ["PersonId"] = IdOf("x@example.com") }, "/Admin?handler=Disable");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, self.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, disabled.StatusCode);
        Assert.Contains("/Account/Login", (await x.GetAsync("/Queues")).Headers.Location!.OriginalString, StringComparison.Ordinal);
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        using var api = App.CreateClient();
        api.DefaultRequestHeaders.Add("X-Api-Key", key);
        Assert.Equal(HttpStatusCode.Unauthorized, (await api.GetAsync("/api/v1/tickets")).StatusCode);
        using var again = ConsoleBrowser.Open(App);
        var signIn = await again.SubmitAsync("/Account/Login", new() { ["Email"] = "x@example.com", ["Password"] = ConsoleBrowser.Password });
        Assert.Equal(HttpStatusCode.OK, signIn.StatusCode);

        // Enabled again, x signs in; y loses the Agent role and with it the queues.
        await admin.SubmitAsync("/Admin", new() { ["PersonId"] = IdOf("x@example.com") }, "/Admin?handler=Enable");
        Assert.Equal(HttpStatusCode.Redirect, (await again.SubmitAsync("/Account/Login", new() { ["Email"] = "x@example.com", ["Password"] = ConsoleBrowser.Password })).StatusCode);
        var roles = await admin.SubmitAsync("/Admin", new() { ["PersonId"] = IdOf("y@example.com"), ["Roles"] = ConsoleRoles.KnowledgeEditor }, "/Admin?handler=Roles");
        Assert.Equal(HttpStatusCode.Redirect, roles.StatusCode);
        var queues = await y.GetAsync("/Queues");
        Assert.Equal(HttpStatusCode.Redirect, queues.StatusCode);
        Assert.DoesNotContain("/Queues", queues.Headers.Location!.OriginalString, StringComparison.Ordinal);
        var dropOwnAdmin = await admin.SubmitAsync("/Admin", new() { ["PersonId"] = IdOf("admin@example.com"), ["Roles"] = ConsoleRoles.Agent }, "/Admin?handler=Roles");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, dropOwnAdmin.StatusCode);
    }

    // C6 (low): one watched ticket per connection
    [Fact]
    public async Task A_connection_watches_one_ticket_at_a_time_and_only_tickets_that_exist()
    {
        var first = await TicketAsync("m-1");
        using var a = await ConsoleBrowser.SignedInAsync(App, "a@example.com", ConsoleRoles.Agent);
        await using var hub = Hub(a);
        var heard = new System.Collections.Concurrent.ConcurrentQueue<long>();
        hub.On<long>("TicketChanged", n => heard.Enqueue(n));
        await hub.StartAsync();

        var missing = await Record.ExceptionAsync(() => hub.InvokeAsync("WatchTicket", 99_999_999L));
        // The live feed has passed m-1's own changes, so a late batch of them cannot reach the first watch.
        var head = await App.QueryAsync(db => Task.FromResult(db.Changes.Max(c => c.Sequence)));
        var feed = App.Services.GetRequiredService<Crm.Service.Infrastructure.Changes.ChangeFeedStatus>();
        await Eventually.WaitForAsync(() => Task.FromResult(feed.Consumers.FirstOrDefault(c => c.Name == "console-live")?.Cursor ?? 0),
            cursor => cursor >= head, what: "the console feed past m-1");
        await hub.InvokeAsync("WatchTicket", first);
        var response = await App.PostMessageAsync(new { messageId = "m-x", sender = new { id = "bob", name = "Bob" }, subject = "Other", text = "x" });
        var second = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
        await hub.InvokeAsync("WatchTicket", second);
        await TicketAsync("m-3"); // alice writes again: a change on the first ticket
        await App.PostMessageAsync(new { messageId = "m-y", sender = new { id = "bob", name = "Bob" }, subject = "Other", text = "y" });

        Assert.IsType<Microsoft.AspNetCore.SignalR.HubException>(missing);
        await Eventually.WaitForAsync(() => Task.FromResult(heard.ToArray()), h => h.Contains(second), what: "the watched ticket's change");
        Assert.DoesNotContain(first, heard);
    }
}
