using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>The queue and ticket pages and the live feed behind them, through the HTTP stack (no browser).</summary>
public sealed class ConsoleTicketTests : AppTest
{
    private const string Agent = "agent@example.com";

    private async Task<JsonElement> ReceiveAsync(string id, string sender = "alice", string? name = "Alice", string text = "It is on fire", string? html = null, object[]? attachments = null)
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name }, subject = "Printer", text, html, attachments });
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private Task<QueueCountsView> CountsAsync(string me = Agent) => App.Services.GetRequiredService<QueueCounts>().GetAsync(me, CancellationToken.None);

    [Fact]
    public async Task An_agent_replies_through_the_customers_channel_and_sees_the_outbound_message_with_its_status()
    {
        var number = (await ReceiveAsync("m-1")).GetProperty("ticketNumber").GetInt64();
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        var before = await agent.PageAsync($"/Tickets/{number}");
        var reply = await agent.SubmitAsync($"/Tickets/{number}", new() { ["ReplyText"] = "We are on our way", ["ReplyStatus"] = "Pending" }, $"/Tickets/{number}?handler=Reply");
        var after = await agent.PageAsync($"/Tickets/{number}");

        Assert.Contains("It is on fire", before, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, reply.StatusCode);
        Assert.Contains("We are on our way", after, StringComparison.Ordinal);
        Assert.Matches("data-delivery=\"(Queued|Sent|Failed)\"", after);
        var outbound = await App.QueryAsync(db => Task.FromResult(db.Messages.Single(m => m.TicketNumber == number && m.Direction == MessageDirection.Outbound)));
        Assert.Equal("bridge", outbound.ChannelAccountId);
        Assert.Equal(TicketStatus.Pending, await App.QueryAsync(db => Task.FromResult(db.Tickets.Single(t => t.Number == number).Status)));
        Assert.Contains("user:" + Agent, after, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Notes_and_field_changes_are_recorded_with_the_person_as_actor_and_bad_input_is_refused()
    {
        var number = (await ReceiveAsync("m-1")).GetProperty("ticketNumber").GetInt64();
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        var note = await agent.SubmitAsync($"/Tickets/{number}", new() { ["NoteText"] = "Call the fire brigade" }, $"/Tickets/{number}?handler=Note");
        var change = await agent.SubmitAsync($"/Tickets/{number}", new() { ["NewStatus"] = "Open", ["NewPriority"] = "Urgent", ["NewAssignee"] = Agent, ["NewTeam"] = "", ["OriginalStatus"] = "New", ["OriginalPriority"] = "Normal", ["OriginalAssignee"] = "", ["OriginalTeam"] = "" }, $"/Tickets/{number}?handler=Change");
        var emptyNote = await agent.SubmitAsync($"/Tickets/{number}", new() { ["NoteText"] = "  " }, $"/Tickets/{number}?handler=Note");
        var longTeam = await agent.SubmitAsync($"/Tickets/{number}", new() { ["NewTeam"] = new string('t', 201), ["NewAssignee"] = Agent }, $"/Tickets/{number}?handler=Change");

        Assert.Equal(HttpStatusCode.Redirect, note.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, change.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, emptyNote.StatusCode);
        Assert.Contains("Write a note first", await emptyNote.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, longTeam.StatusCode);
        var ticket = await App.QueryAsync(db => Task.FromResult(db.Tickets.Single(t => t.Number == number)));
        Assert.Equal((TicketPriority.Urgent, Agent, (string?)null), (ticket.Priority, ticket.Assignee, ticket.Team));
        var audit = await App.QueryAsync(db => Task.FromResult(db.Audit.Where(a => a.EntityId == number.ToString()).Select(a => a.Actor).ToList()));
        Assert.Contains("user:" + Agent, audit);
        Assert.Contains("Call the fire brigade", await agent.PageAsync($"/Tickets/{number}"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hostile_names_texts_and_html_bodies_are_encoded_and_html_shows_only_in_a_sandboxed_frame()
    {
        const string payload = "<img src=x onerror=alert('xss')><script>alert('xss')</script>";
        var number = (await ReceiveAsync("m-1", name: payload, text: payload, html: "<p>hi</p>" + payload)).GetProperty("ticketNumber").GetInt64();
        var customer = await App.QueryAsync(db => Task.FromResult(db.Tickets.Single(t => t.Number == number).CustomerId));
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        foreach (var path in new[] { $"/Tickets/{number}", "/Queues/Open", $"/Customers/{customer}", $"/Tickets/{number}?handler=Timeline" })
        {
            var response = await agent.GetAsync(path);
            var html = await response.Content.ReadAsStringAsync();
            Assert.DoesNotContain("<script>alert", html, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("<img src=x", html, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("&lt;img src=x", html, StringComparison.Ordinal);
            Assert.Contains("script-src 'self'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        }
        // The HTML body is its own document in a frame sandboxed without scripts, under a policy with no script source.
        var frame = System.Text.RegularExpressions.Regex.Match(await agent.PageAsync($"/Tickets/{number}"), "<iframe sandbox=\"allow-same-origin\" name=\"body-[^\"]+\" src=\"([^\"]+)\"");
        Assert.True(frame.Success, "no sandboxed body frame");
        var body = await agent.GetAsync(System.Net.WebUtility.HtmlDecode(frame.Groups[1].Value));
        Assert.StartsWith("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body><p>hi</p>", await body.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain("<script", await body.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        var policy = body.Headers.GetValues("Content-Security-Policy").Single();
        Assert.StartsWith("default-src 'none';", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("script", policy, StringComparison.Ordinal);
        Assert.EndsWith("sandbox allow-same-origin", policy, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Attachments_download_with_safe_headers_and_only_through_their_own_ticket()
    {
        var html = Convert.ToBase64String("<script>alert(1)</script>"u8.ToArray());
        var first = (await ReceiveAsync("m-1", attachments: [new { fileName = "page.html", contentType = "text/html", contentBase64 = html }])).GetProperty("ticketNumber").GetInt64();
        var other = (await ReceiveAsync("m-2", sender: "bob")).GetProperty("ticketNumber").GetInt64();
        var id = await App.QueryAsync(db => Task.FromResult(db.Attachments.Single().Id));
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        var download = await agent.GetAsync($"/Tickets/{first}?handler=Attachment&id={id}");
        var elsewhere = await agent.GetAsync($"/Tickets/{other}?handler=Attachment&id={id}");

        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal("application/octet-stream", download.Content.Headers.ContentType!.MediaType);
        Assert.Equal("attachment", download.Content.Headers.ContentDisposition!.DispositionType);
        Assert.Equal("nosniff", download.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("sandbox", download.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Equal(HttpStatusCode.NotFound, elsewhere.StatusCode);
    }

    [Fact]
    public async Task Queue_counts_follow_the_change_feed()
    {
        Assert.Equal(new QueueCountsView(0, 0, 0, 0, 0), await CountsAsync());
        var number = (await ReceiveAsync("m-1")).GetProperty("ticketNumber").GetInt64();
        await ReceiveAsync("m-2", sender: "bob");

        await Eventually.WaitForAsync(() => CountsAsync(), c => c == new QueueCountsView(0, 2, 2, 0, 0), what: "two new unassigned tickets");
        await App.Grains.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Assignee = Agent, Status = TicketStatus.Pending }, "test");
        await Eventually.WaitForAsync(() => CountsAsync(), c => c == new QueueCountsView(1, 1, 1, 1, 0), what: "one mine and pending");
        await App.Grains.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Status = TicketStatus.Resolved }, "test");
        await Eventually.WaitForAsync(() => CountsAsync(), c => c == new QueueCountsView(0, 1, 1, 0, 1), what: "one resolved");
        Assert.Equal(0, (await CountsAsync("someone-else")).Mine);
    }

    [Fact]
    public async Task A_withdrawn_ticket_leaves_every_count()
    {
        // What a conversation does when the copy of a message it opened a ticket for lost the race on another thread.
        var store = App.Services.GetRequiredService<Crm.Service.Grains.Storage.ICrmStore>();
        var number = Random.Shared.NextInt64(700_000_000, 799_999_999);
        var now = DateTimeOffset.UtcNow;
        await store.CommitAsync(new Crm.Service.Grains.Storage.WriteSet().Insert(new Crm.Service.Grains.Records.TicketRecord { Number = number, Subject = "empty", CreatedAt = now, UpdatedAt = now }));
        await Eventually.WaitForAsync(() => CountsAsync(), c => c == new QueueCountsView(0, 1, 1, 0, 0), what: "the opened ticket");

        await store.CommitAsync(new Crm.Service.Grains.Storage.WriteSet().Add(new Crm.Service.Grains.Storage.WithdrawEmptyTicket(number, Guid.NewGuid(), RestorePointerTo: null)));

        await Eventually.WaitForAsync(() => CountsAsync(), c => c == new QueueCountsView(0, 0, 0, 0, 0), what: "no ticket counted, closed included");
    }

    [Fact]
    public async Task A_restarted_node_counts_the_existing_tickets_once()
    {
        var number = (await ReceiveAsync("m-1")).GetProperty("ticketNumber").GetInt64();
        await App.Grains.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Status = TicketStatus.Closed }, "test");
        await ReceiveAsync("m-2", sender: "bob");
        var counts = App.Services.GetRequiredService<QueueCounts>();
        var fresh = new QueueCounts(App.Services.GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<Crm.Service.Infrastructure.Store.CrmDbContext>>(),
            App.Services.GetRequiredService<Crm.Service.Infrastructure.Store.StoreInitializer>());
        var all = await App.Services.GetRequiredService<Crm.Service.Infrastructure.Changes.IChangeFeed>().ReadAsync(0, 1000);

        await fresh.GetAsync(Agent, CancellationToken.None);
        // The whole feed again, as after a restart: changes before the snapshot must not count twice.
        await fresh.ApplyAsync(all, CancellationToken.None);
        await fresh.ApplyAsync(all, CancellationToken.None);

        Assert.Equal(new QueueCountsView(0, 1, 1, 0, 1), await fresh.GetAsync(Agent, CancellationToken.None));
        await Eventually.WaitForAsync(() => counts.GetAsync(Agent, CancellationToken.None), c => c == new QueueCountsView(0, 1, 1, 0, 1));
    }

    [Fact]
    public async Task Queue_pages_filter_and_page_by_cursor()
    {
        for (var i = 0; i < 3; i++)
            await ReceiveAsync($"m-{i}", sender: $"customer-{i}", name: $"Customer {i}");
        var numbers = await App.QueryAsync(db => Task.FromResult(db.Tickets.OrderBy(t => t.Number).Select(t => t.Number).ToList()));
        await App.Grains.GetGrain<ITicketGrain>(numbers[0]).ChangeAsync(new TicketChange { Priority = TicketPriority.Urgent }, "test");
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        var open = await agent.PageAsync("/Queues/Open");
        var urgent = await agent.PageAsync("/Queues/Open?priority=Urgent");
        var closed = await agent.PageAsync("/Queues/Closed");
        var bad = await agent.GetAsync("/Queues/Open?cursor=not-a-cursor");

        Assert.All(numbers, n => Assert.Contains($"data-ticket=\"{n}\"", open, StringComparison.Ordinal));
        Assert.Contains($"data-ticket=\"{numbers[0]}\"", urgent, StringComparison.Ordinal);
        Assert.DoesNotContain($"data-ticket=\"{numbers[1]}\"", urgent, StringComparison.Ordinal);
        Assert.DoesNotContain("data-ticket=\"", closed, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task The_hub_pushes_new_tickets_and_new_messages_of_a_watched_ticket()
    {
        var number = (await ReceiveAsync("m-1")).GetProperty("ticketNumber").GetInt64();
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        await using var hub = agent.AgentHub(App);
        var ticketChanged = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var queuesChanged = new TaskCompletionSource<long[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.On<long>("TicketChanged", n => ticketChanged.TrySetResult(n));
        hub.On<long[]>("QueuesChanged", tickets => { if (tickets.Any(t => t != number)) queuesChanged.TrySetResult(tickets); });
        await hub.StartAsync();
        await hub.InvokeAsync("WatchTicket", number);

        await ReceiveAsync("m-2");
        var newTicket = (await ReceiveAsync("m-3", sender: "bob")).GetProperty("ticketNumber").GetInt64();

        Assert.Equal(number, await ticketChanged.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(newTicket, await queuesChanged.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        var counts = await hub.InvokeAsync<QueueCountsView>("GetCounts");
        Assert.Equal(2, counts.Open);
    }

    [Fact]
    public async Task An_agent_merges_two_customers_and_detaches_an_identity_on_the_customer_page()
    {
        var alice = (await ReceiveAsync("m-1", sender: "alice")).GetProperty("customerId").GetGuid();
        var bob = (await ReceiveAsync("m-2", sender: "bob", name: "Bob")).GetProperty("customerId").GetGuid();
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        var toItself = await agent.SubmitAsync($"/Customers/{alice}", new() { ["MergeFrom"] = alice.ToString() }, $"/Customers/{alice}?handler=Merge");
        var merged = await agent.SubmitAsync($"/Customers/{alice}", new() { ["MergeFrom"] = bob.ToString() }, $"/Customers/{alice}?handler=Merge");
        var page = await agent.PageAsync($"/Customers/{alice}");
        var foreign = await agent.SubmitAsync($"/Customers/{alice}", new() { ["Identity"] = "external:other:nobody" }, $"/Customers/{alice}?handler=Detach");
        var detached = await agent.SubmitAsync($"/Customers/{alice}", new() { ["Identity"] = "external:bridge:bob" }, $"/Customers/{alice}?handler=Detach");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, toItself.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, merged.StatusCode);
        Assert.Equal(alice, await App.QueryAsync(db => Task.FromResult(db.Customers.Single(c => c.Id == bob).MergedInto)));
        Assert.Contains("bob", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, foreign.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, detached.StatusCode);
        var owner = await App.QueryAsync(db => Task.FromResult(db.Identities.Single(i => i.Key == "external:bridge:bob").CustomerId));
        Assert.NotEqual(alice, owner);
        Assert.EndsWith(owner.ToString(), detached.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }
}

