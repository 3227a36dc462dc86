using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Grains.Routing;
using Crm.Service.Grains.Sla;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

/// <summary>Fixes of the fourth cold review of routing/SLA (H1, M1-M3 in routing4.md), each with the test that failed before.</summary>
public sealed class RoutingReview4FixTests
{
    private const string Ann = "ann@example.com";
    private const string Bob = "bob@example.com";

    private static Task<string> UserIdAsync(CrmApp app, string email) => app.UserIdAsync(email);

    private static async Task<Guid> RecordAsync(HttpClient client, Guid customer, object body)
    {
        var created = await client.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", body);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (await created.Content.ReadFromJsonAsync<JsonElement>(CrmApp.Json)).GetProperty("id").GetGuid();
    }

    // H1: a follow-up recorded with an API key (an integration) had the key as its owner, and the reminder went to
    // nobody: API-key actors have no console. It now goes to who can act: the ticket's assignee, else the team, else
    // the admins, and the console shows it as a follow-up (linking the customer when there is no ticket). routing4
    // review RR7: the name said "team first"; a case with both a team and an assignee now pins the order.
    [Fact]
    public async Task A_follow_up_owned_by_an_api_key_reminds_the_assignee_else_the_team_else_the_admins_in_the_console()
    {
        using var data = new TempDirectory();
        // A fake clock (kept at real time) only so the test can deliver the reminder's tick itself.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock);
        await app.CreateApiChannelAsync();
        using var ann = await ConsoleBrowser.SignedInAsync(app, Ann, ConsoleRoles.Admin, ConsoleRoles.Agent);
        using var bob = await ConsoleBrowser.SignedInAsync(app, Bob, ConsoleRoles.Agent);
        await app.Services.GetRequiredService<TeamDirectory>().SaveAsync("sales", "Sales", false, [await UserIdAsync(app, Bob)], CancellationToken.None);
        await using var annHub = ann.AgentHub(app);
        await using var bobHub = bob.AgentHub(app);
        var annHeard = new ConcurrentQueue<AgentNotification>();
        var bobHeard = new ConcurrentQueue<AgentNotification>();
        // Only the follow-up notices count here (assignments notify too).
        annHub.On<AgentNotification>("Notify", n => { if (n.Kind.Contains("follow-up", StringComparison.Ordinal)) annHeard.Enqueue(n); });
        bobHub.On<AgentNotification>("Notify", n => { if (n.Kind.Contains("follow-up", StringComparison.Ordinal)) bobHeard.Enqueue(n); });
        await annHub.StartAsync();
        await bobHub.StartAsync();
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var opened = await scenario.ReceiveAsync(scenario.Message("h1-1", GrainScenario.NewPhone(), "Please call me"));
        using var integration = await app.AgentAsync("crm-sync");

        async Task FireAsync(Guid entry)
        {
            var grain = app.Grains.GetGrain<ICustomerFollowUpGrain>(entry);
            await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
            Assert.NotNull((await grain.GetAsync())!.RemindedAt);
        }

        // The team's members are told.
        var due = clock.GetUtcNow().AddMinutes(-1);
        await FireAsync(await RecordAsync(integration, opened.CustomerId, new { how = "phone", nextDueAt = due, team = "sales" }));
        var toTeam = await Eventually.WaitForAsync(() => Task.FromResult(bobHeard.ToArray()), n => n.Length > 0, what: "bob (sales) told of the due follow-up");
        Assert.Equal(("customer-follow-up-due", 0L, opened.CustomerId), (toTeam[0].Kind, toTeam[0].Ticket, toTeam[0].Customer));

        // No team, but a ticket with an assignee: the assignee.
        await app.Grains.GetGrain<ITicketGrain>(opened.TicketNumber).ChangeAsync(new TicketChange { Assignee = Bob }, "test");
        await FireAsync(await RecordAsync(integration, opened.CustomerId, new { how = "email", nextDueAt = due, ticket = opened.TicketNumber }));
        var toAssignee = await Eventually.WaitForAsync(() => Task.FromResult(bobHeard.ToArray()), n => n.Length > 1, what: "bob (assignee) told");
        Assert.Equal(("customer-follow-up-due", opened.TicketNumber), (toAssignee[1].Kind, toAssignee[1].Ticket));

        // Both a team and an assigned ticket: the assignee (ann, not in sales) is told, not the team (bob).
        await app.Grains.GetGrain<ITicketGrain>(opened.TicketNumber).ChangeAsync(new TicketChange { Assignee = Ann }, "test");
        await FireAsync(await RecordAsync(integration, opened.CustomerId, new { how = "phone", nextDueAt = due, team = "sales", ticket = opened.TicketNumber }));
        var toAnn = await Eventually.WaitForAsync(() => Task.FromResult(annHeard.ToArray()), n => n.Length > 0, what: "ann (assignee outside the team) told");
        Assert.Equal(("customer-follow-up-due", opened.TicketNumber), (toAnn[0].Kind, toAnn[0].Ticket));

        // Neither: the admins.
        await FireAsync(await RecordAsync(integration, opened.CustomerId, new { how = "visit", nextDueAt = due }));
        var toAdmins = await Eventually.WaitForAsync(() => Task.FromResult(annHeard.ToArray()), n => n.Length > 1, what: "ann (admin) told");
        Assert.Equal(("customer-follow-up-due", opened.CustomerId), (toAdmins[1].Kind, toAdmins[1].Customer));
        Assert.Equal(2, annHeard.Count);
        // Bob heard the team and the assignee cases only: not the case whose ticket ann holds.
        Assert.Equal(2, bobHeard.Count);
    }

    private static async Task<List<JsonElement>> WalkAsync(HttpClient client, string path, int pageSize)
    {
        var items = new List<JsonElement>();
        string? cursor = null;
        for (var pages = 0; pages < 20; pages++)
        {
            var separator = path.Contains('?', StringComparison.Ordinal) ? "&" : "?";
            var page = await client.GetFromJsonAsync<JsonElement>($"{path}{separator}pageSize={pageSize}" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}"));
            var got = page.GetProperty("items").EnumerateArray().ToList();
            Assert.True(got.Count <= pageSize);
            items.AddRange(got);
            if (!page.GetProperty("hasMore").GetBoolean())
            {
                Assert.Equal(JsonValueKind.Null, page.GetProperty("nextCursor").ValueKind);
                return items;
            }
            cursor = page.GetProperty("nextCursor").GetString();
        }
        throw new InvalidOperationException("The walk did not end.");
    }

    // M1: both follow-up lists read and returned every entry. M2: any key could mark anyone's follow-up done, and a
    // retried POST recorded the contact twice.
    [Fact]
    public async Task Follow_up_lists_are_paged_only_the_author_owner_or_an_admin_closes_one_and_a_retried_record_is_one_entry()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customers = new List<Guid>();
        for (var i = 0; i < 5; i++)
            customers.Add((await scenario.ReceiveAsync(scenario.Message($"m1-{i}", GrainScenario.NewPhone(), "Call me"))).CustomerId);
        using var alice = await app.AgentAsync("alice");
        using var mallory = await app.AgentAsync("mallory");
        using var admin = app.Admin();
        var now = DateTimeOffset.UtcNow;

        // A log of five contacts with one customer, walked two at a time: newest first, each once.
        var log = new List<Guid>();
        for (var i = 0; i < 5; i++)
            log.Add(await RecordAsync(alice, customers[0], new { how = "phone", at = now.AddMinutes(-10 + i), outcome = $"call {i}" }));
        var walked = await WalkAsync(alice, $"/api/v1/customers/{customers[0]}/follow-ups", 2);
        Assert.Equal(Enumerable.Reverse(log), walked.Select(e => e.GetProperty("id").GetGuid()));

        // One due follow-up on each customer, walked two at a time: earliest first, each once.
        var due = new List<Guid>();
        for (var i = 0; i < 5; i++)
            due.Add(await RecordAsync(alice, customers[i], new { how = "email", nextDueAt = now.AddMinutes(-30 + i), owner = "carol@example.com" }));
        var dueWalk = await WalkAsync(alice, "/api/v1/follow-ups/due?owner=CAROL@example.com", 2);
        Assert.Equal(due, dueWalk.Select(e => e.GetProperty("id").GetGuid()));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await alice.GetAsync("/api/v1/follow-ups/due?pageSize=201")).StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await alice.GetAsync("/api/v1/follow-ups/due?cursor=not-a-cursor")).StatusCode);
        var logCursor = (await alice.GetFromJsonAsync<JsonElement>($"/api/v1/customers/{customers[0]}/follow-ups?pageSize=1")).GetProperty("nextCursor").GetString()!;
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await alice.GetAsync($"/api/v1/follow-ups/due?cursor={Uri.EscapeDataString(logCursor)}")).StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await alice.GetAsync($"/api/v1/customers/{customers[1]}/follow-ups?cursor={Uri.EscapeDataString(logCursor)}")).StatusCode);

        // Closing: not for another key; for the author; an admin closes any.
        Assert.Equal(HttpStatusCode.Forbidden, (await mallory.PostAsync($"/api/v1/follow-ups/{due[0]}/done", null)).StatusCode);
        Assert.Null((await app.Grains.GetGrain<ICustomerFollowUpGrain>(due[0]).GetAsync())!.DoneAt);
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"/api/v1/follow-ups/{due[0]}/done", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync($"/api/v1/follow-ups/{due[1]}/done", null)).StatusCode);
        Assert.Equal(3, (await WalkAsync(alice, "/api/v1/follow-ups/due?owner=carol@example.com", 50)).Count);

        // A POST retried with its Idempotency-Key is one entry (and does not close itself).
        async Task<Guid> RecordOnceAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/customers/{customers[4]}/follow-ups")
            {
                Content = JsonContent.Create(new { how = "visit", nextDueAt = now.AddDays(1) }),
            };
            request.Headers.Add("Idempotency-Key", "visit-1");
            var response = await mallory.SendAsync(request);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            return (await response.Content.ReadFromJsonAsync<JsonElement>(CrmApp.Json)).GetProperty("id").GetGuid();
        }
        var once = await RecordOnceAsync();
        Assert.Equal(once, await RecordOnceAsync());
        Assert.Single(await WalkAsync(mallory, $"/api/v1/customers/{customers[4]}/follow-ups", 50), e => e.GetProperty("how").GetString() == "visit");
        Assert.Null((await app.Grains.GetGrain<ICustomerFollowUpGrain>(once).GetAsync())!.DoneAt);
    }

    // M3: the routing wait was stored before its reminder was registered: a crash in between left a stored wait that
    // no tick would ever end (the consumers leave waiting tickets alone), so the ticket was never routed.
    [Fact]
    public async Task A_crash_after_the_routing_wait_is_stored_still_leaves_its_reminder_and_the_ticket_is_routed()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock, services: s => { RoutingReview2FixTests.WithoutFeed(s); RoutingReview2FixTests.InterceptRoutingStore(s); });
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/teams/billing", new { name = "Billing" })).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/refunds", new
        {
            name = "Refunds", conditions = new { keywords = new[] { "refund" } }, team = "billing",
        })).EnsureSuccessStatusCode();
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var first = await scenario.ReceiveAsync(scenario.Message("m3-1", GrainScenario.NewPhone(), "Where is my refund?"));
        // An agent's reply split into a ticket of its own: a conversation but no customer message, so routing waits.
        var reply = await app.Grains.GetGrain<ITicketGrain>(first.TicketNumber).ReplyAsync(new AgentReply { Actor = "agent", Text = "About the refund" });
        var split = (await app.Grains.GetGrain<ITicketGrain>(first.TicketNumber).SplitAsync(reply.Id, "agent")).Number;
        var interceptor = app.Services.GetRequiredService<RoutingReview2FixTests.InterceptingRoutingStore>();
        interceptor.AfterPut = (kind, id) =>
        {
            if (kind != RoutingKinds.TicketRouting || id != split.ToString(CultureInfo.InvariantCulture))
                return Task.CompletedTask;
            interceptor.AfterPut = null;
            throw new IOException("killed after the wait was stored");
        };
        var routing = app.Grains.GetGrain<ITicketRoutingGrain>(split);
        await Assert.ThrowsAsync<IOException>(() => routing.RouteAsync());
        var grainId = routing.GetGrainId().ToString();
        Assert.Equal(1, await app.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Reminders,
            r => r.GrainId == grainId && r.Name == TicketRoutingGrain.ReminderName)));

        // The wait ends: the tick routes the ticket on what it has and the reminder goes.
        clock.Advance(TicketRoutingGrain.FirstMessageWait + TimeSpan.FromSeconds(1));
        await routing.AsReference<IActivationProbe>().FireReminderAsync(TicketRoutingGrain.ReminderName);
        Assert.Equal((false, true), ((await routing.RouteAsync())!.Waiting, (await routing.RouteAsync())!.Applied));
        Assert.Equal(0, await app.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Reminders,
            r => r.GrainId == grainId && r.Name == TicketRoutingGrain.ReminderName)));
    }
}

/// <summary>Issue 20 bullets that had no test: escalation to an escalation team, and an agent coming back online.</summary>
public sealed class EscalationAndPresenceTests
{
    private static async Task<SlaStatus> TickAsync(CrmApp app, long ticket)
    {
        var grain = app.Grains.GetGrain<ISlaClockGrain>(ticket);
        // Orleans ticks on real time; the grain acts on the fake clock, so the test delivers the tick itself.
        await grain.AsReference<IActivationProbe>().FireReminderAsync("sla");
        return await grain.GetAsync();
    }

    [Fact]
    public async Task A_breach_escalates_by_level_and_the_last_level_moves_the_ticket_to_the_escalation_team_whose_queue_assigns_it()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock);
        await app.CreateApiChannelAsync();
        using var admin = app.Admin();
        foreach (var team in new[] { "support", "escalation" })
            (await admin.PutAsJsonAsync($"/api/v1/admin/teams/{team}", new { name = team })).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/standard", new
        {
            name = "Standard",
            targets = new[] { new { priority = "normal", firstResponse = "01:00:00", resolution = "1.00:00:00" } },
            escalations = new object[]
            {
                new { after = "00:00:00", notifyAssignee = true, notifySupervisors = true },
                new { after = "00:30:00", notifyAssignee = false, notifySupervisors = true, reassignToTeam = "escalation", addTag = "escalated" },
            },
        })).EnsureSuccessStatusCode();
        var accepted = await (await app.PostMessageAsync(new { messageId = "esc-1", sender = new { id = "esc-1@example.com", kind = "email" }, text = "Help" }))
            .Content.ReadFromJsonAsync<JsonElement>();
        var number = accepted.GetProperty("ticketNumber").GetInt64();
        var ticketGrain = app.Grains.GetGrain<ITicketGrain>(number);
        await ticketGrain.ChangeAsync(new TicketChange { Team = "support", Assignee = "agent-1" }, "admin");
        await Eventually.WaitForAsync(() => app.Grains.GetGrain<ISlaClockGrain>(number).SyncAsync(), s => s.Clocks.Count == 2, what: "the SLA clocks");
        var queue = app.Grains.GetGrain<ITeamQueueGrain>("escalation");
        await queue.ConfigureAsync(new TeamAssignmentSettings { Policy = AssignmentPolicy.RoundRobin, Agents = [new AgentCapacity("senior-1", [])] });
        await queue.SetOnlineAsync("senior-1", true);

        // Breached: the first level only notifies; the ticket stays with its team and assignee.
        clock.Advance(TimeSpan.FromMinutes(61));
        var breached = await TickAsync(app, number);
        Assert.Contains(breached.Events, e => e.Milestone == "breach-1");
        Assert.Equal(("support", "agent-1"), ((await ticketGrain.GetAsync())!.Team, (await ticketGrain.GetAsync())!.Assignee));

        // Half an hour later the second level moves it to the escalation team, unassigned, tagged; once.
        clock.Advance(TimeSpan.FromMinutes(30));
        var escalated = await TickAsync(app, number);
        Assert.Contains(escalated.Events, e => e.Milestone == "breach-2");
        var moved = (await ticketGrain.GetAsync())!;
        Assert.Equal("escalation", moved.Team);
        Assert.True(string.IsNullOrEmpty(moved.Assignee));
        Assert.Contains("escalated", moved.Tags);
        Assert.Equal(escalated.Events.Count, (await TickAsync(app, number)).Events.Count);

        // The "assignment" consumer hands the moved ticket to its new team's queue (through the change feed, whose
        // dispatcher polls on the real clock; routing4 review RR8: the test no longer calls the queue itself), which
        // gives it to the escalation team's online agent.
        await Eventually.WaitForAsync(() => ticketGrain.GetAsync(), t => t!.Assignee == "senior-1", what: "the escalation team's agent to get the ticket");
    }
}

[Collection(ClusterCollection.Name)]
public sealed class OfflineReturnAssignmentTests(TestClusterFixture fixture)
{
    private async Task<long> TicketIntoAsync(GrainScenario scenario, ITeamQueueGrain queue, string team, string id)
    {
        var opened = await scenario.ReceiveAsync(scenario.Message(id, GrainScenario.NewPhone()));
        var moved = await fixture.Grains.GetGrain<ITicketGrain>(opened.TicketNumber).ChangeAsync(new TicketChange { Team = team }, "admin");
        await queue.ObserveAsync(moved);
        return opened.TicketNumber;
    }

    private Task<string[]> AssigneesAsync(IEnumerable<long> numbers, string what) =>
        Eventually.WaitForAsync(async () => (await Task.WhenAll(numbers.Select(n => fixture.Grains.GetGrain<ITicketGrain>(n).GetAsync()))).Select(t => t!.Assignee ?? "").ToArray(),
            all => all.All(a => a.Length > 0), what: what);

    [Fact]
    public async Task Round_robin_gives_the_waiting_tickets_to_an_agent_coming_online_and_then_takes_in_the_returning_agent_first()
    {
        var team = "rr-" + Guid.NewGuid().ToString("N")[..10];
        var (c, d) = ($"{team}-c", $"{team}-d");
        var queue = fixture.Grains.GetGrain<ITeamQueueGrain>(team);
        await queue.ConfigureAsync(new TeamAssignmentSettings { Policy = AssignmentPolicy.RoundRobin, Agents = [new AgentCapacity(c, []), new AgentCapacity(d, [])] });
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();

        // Nobody online: both tickets wait; c comes online and gets both at once.
        var waiting = new[] { await TicketIntoAsync(scenario, queue, team, $"{team}-1"), await TicketIntoAsync(scenario, queue, team, $"{team}-2") };
        Assert.Equal(2, (await queue.GetAsync()).Waiting.Count);
        await queue.SetOnlineAsync(c, true);
        Assert.All(await AssigneesAsync(waiting, "the waiting tickets to go to c"), a => Assert.Equal(c, a));

        // d comes back online: d (never given work) is next, then the turns alternate.
        await queue.SetOnlineAsync(d, true);
        var later = new List<long>();
        for (var i = 0; i < 4; i++)
        {
            later.Add(await TicketIntoAsync(scenario, queue, team, $"{team}-l{i}"));
            await AssigneesAsync(later, "each new ticket to be assigned before the next");
        }
        Assert.Equal([d, c, d, c], await AssigneesAsync(later, "the new tickets"));
        var snapshot = await queue.GetAsync();
        Assert.Equal((4, 2), (snapshot.OpenTickets[c], snapshot.OpenTickets[d]));
    }

    [Fact]
    public async Task Least_loaded_sends_new_work_to_an_agent_back_online_until_the_loads_are_even()
    {
        var team = "ll-" + Guid.NewGuid().ToString("N")[..10];
        var (a, b) = ($"{team}-a", $"{team}-b");
        var queue = fixture.Grains.GetGrain<ITeamQueueGrain>(team);
        await queue.ConfigureAsync(new TeamAssignmentSettings { Policy = AssignmentPolicy.LeastLoaded, Agents = [new AgentCapacity(a, [], 10), new AgentCapacity(b, [], 10)] });
        await queue.SetOnlineAsync(a, true);
        await queue.SetOnlineAsync(b, true);
        await queue.SetOnlineAsync(b, false);
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();

        var first = new List<long>();
        for (var i = 0; i < 4; i++)
            first.Add(await TicketIntoAsync(scenario, queue, team, $"{team}-f{i}"));
        Assert.All(await AssigneesAsync(first, "b offline: a gets everything"), x => Assert.Equal(a, x));

        await queue.SetOnlineAsync(b, true);
        var second = new List<long>();
        for (var i = 0; i < 6; i++)
        {
            second.Add(await TicketIntoAsync(scenario, queue, team, $"{team}-s{i}"));
            await AssigneesAsync(second, "each new ticket to be assigned before the next");
        }
        var given = await AssigneesAsync(second, "the new tickets");
        // b (0 open) takes the next four; then the loads are even (4:4... 5:5) and the ties alternate.
        Assert.Equal([b, b, b, b], given[..4]);
        var snapshot = await queue.GetAsync();
        Assert.Equal((5, 5), (snapshot.OpenTickets[a], snapshot.OpenTickets[b]));
    }
}
