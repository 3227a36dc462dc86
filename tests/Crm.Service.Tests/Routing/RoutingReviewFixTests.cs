using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.Core.Internal;

namespace Crm.Service.Tests.Routing;

/// <summary>Fixes of the cold review of routing/SLA (R1-R19 in the review file), each with the test that failed before.</summary>
public sealed class RoutingReviewFixTests
{
    private const string Alice = "alice@example.com";

    private static async Task<long> OpenTicketAsync(CrmApp app, string id, string text = "Help, please", string? sender = null)
    {
        var response = await app.PostMessageAsync(new { messageId = id, sender = new { id = sender ?? $"{id}@example.com", kind = "email" }, text });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    // R18 (auto-assignment wrote the account id, not the sign-in name) and R3 (a reactivated queue thought everyone offline).
    [Fact]
    public async Task Auto_assignment_writes_the_sign_in_name_and_a_reactivated_queue_still_knows_who_is_online()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await app.CreateApiChannelAsync();
        await ConsoleBrowser.CreateUserAsync(app, Alice, ConsoleRoles.Agent);
        string aliceId;
        using (var scope = app.Services.CreateScope())
            aliceId = (await scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>().FindByEmailAsync(Alice))!.Id;
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/teams/support", new { name = "Support", members = new[] { Alice } })).EnsureSuccessStatusCode();
        var duplicate = await admin.PutAsJsonAsync("/api/v1/admin/teams/support/assignment", new { policy = "roundRobin", agents = new[] { new { email = Alice }, new { email = "ALICE@example.com" } } });
        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, duplicate.StatusCode); // R12: was a 500 after the settings were stored
        (await admin.PutAsJsonAsync("/api/v1/admin/teams/support/assignment", new { policy = "roundRobin", agents = new[] { new { email = Alice } } })).EnsureSuccessStatusCode();
        var queue = app.Grains.GetGrain<ITeamQueueGrain>("support");

        // Alice's console connects: the hub's presence reaches the queue under her sign-in name.
        app.Services.GetRequiredService<AgentPresence>().Connected(aliceId, Alice, "connection-1");
        await Eventually.WaitForAsync(queue.GetAsync, q => q.Online.Contains(Alice), what: "alice online in the queue");

        using var agent = await app.AgentAsync();
        var first = await OpenTicketAsync(app, "r18-1");
        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{first}", new { team = "support" })).EnsureSuccessStatusCode();
        await Eventually.WaitForAsync(() => app.Grains.GetGrain<ITicketGrain>(first).GetAsync(), t => t!.Assignee is { Length: > 0 }, what: "the ticket to be assigned");
        Assert.Equal(Alice, (await app.Grains.GetGrain<ITicketGrain>(first).GetAsync())!.Assignee);
        // Her "Mine" list (the read model filters on the sign-in name) has it.
        var mine = await Eventually.WaitForAsync(() => agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets?assignee={Uri.EscapeDataString(Alice)}"),
            page => page.GetProperty("items").GetArrayLength() == 1, what: "the ticket in alice's list");
        Assert.Equal(first, mine.GetProperty("items")[0].GetProperty("number").GetInt64());

        // The queue's activation is collected (idle over lunch); presence did not change meanwhile.
        await queue.AsReference<IGrainManagementExtension>().DeactivateOnIdle();
        var second = await OpenTicketAsync(app, "r18-2");
        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{second}", new { team = "support" })).EnsureSuccessStatusCode();
        await Eventually.WaitForAsync(() => app.Grains.GetGrain<ITicketGrain>(second).GetAsync(), t => t!.Assignee == Alice, what: "the reactivated queue to assign to alice");
    }

    // R1: the next-response clock did not start for a customer message on an open ticket.
    [Fact]
    public async Task A_customer_answer_on_an_open_ticket_starts_the_next_response_clock()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock);
        await app.CreateApiChannelAsync();
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/standard", new
        {
            name = "Standard",
            targets = new[] { new { priority = "normal", firstResponse = "04:00:00", nextResponse = "01:00:00" } },
        })).EnsureSuccessStatusCode();
        // The channel API checks signatures on real time; with the fake clock hours ahead, messages come in through the grains.
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        async Task<long> CustomerWritesAsync(string id, string text) => (await scenario.ReceiveAsync(scenario.Message(id, phone, text))).TicketNumber;
        var ticket = await CustomerWritesAsync("r1-1", "Help, please");
        var sla = app.Grains.GetGrain<ISlaClockGrain>(ticket);
        await sla.SyncAsync();
        using var agent = await app.AgentAsync();
        clock.Advance(TimeSpan.FromMinutes(5));
        (await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text = "Which order?" })).EnsureSuccessStatusCode();
        await sla.SyncAsync();
        clock.Advance(TimeSpan.FromMinutes(5));
        var asked = clock.GetUtcNow();
        Assert.Equal(ticket, await CustomerWritesAsync("r1-2", "Order 42"));
        var status = await sla.SyncAsync();
        var next = Assert.Single(status.Clocks, c => c.Metric == SlaMetric.NextResponse);
        Assert.True(next.Running);
        Assert.Equal(asked.AddHours(1), next.DueAt);

        // R4: a nudge 50 minutes later does not restart the clock (the customer has waited since the first question).
        clock.Advance(TimeSpan.FromMinutes(50));
        Assert.Equal(ticket, await CustomerWritesAsync("r1-3", "Any news?"));
        Assert.Equal(asked.AddHours(1), (await sla.SyncAsync()).Clocks.Single(c => c.Metric == SlaMetric.NextResponse).DueAt);
    }

    // R2: an escalation the ticket refuses (50 tags) failed every sync and tick of that ticket, and a failing ticket
    // blocked the "sla" consumer's whole batch.
    [Fact]
    public async Task An_escalation_the_ticket_refuses_still_fires_and_a_failing_ticket_does_not_block_the_others()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock);
        await app.CreateApiChannelAsync();
        using var admin = app.Admin();
        var tooLong = await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/bad", new
        {
            name = "Bad", targets = new[] { new { priority = "normal", resolution = "00:10:00" } },
            escalations = new[] { new { after = "10675199.00:00:00" } },
        });
        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, tooLong.StatusCode);
        var nullKeyword = await admin.PutAsync("/api/v1/admin/sla-policies/bad", JsonContent.Create(JsonDocument.Parse(
            """{"name":"Bad","conditions":{"keywords":[null]},"targets":[{"priority":"normal","resolution":"00:10:00"}]}""").RootElement));
        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, nullKeyword.StatusCode);
        (await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/quick", new
        {
            name = "Quick", targets = new[] { new { priority = "normal", resolution = "00:10:00" } }, warningAt = (double?)null,
            escalations = new[] { new { after = "00:00:00", addTag = "sla-breached" } },
        })).EnsureSuccessStatusCode();
        var ticket = await OpenTicketAsync(app, "r2-1");
        await app.Grains.GetGrain<ITicketGrain>(ticket).ChangeAsync(new TicketChange { Tags = [.. Enumerable.Range(0, 50).Select(i => $"t{i}")] }, "agent");
        var sla = app.Grains.GetGrain<ISlaClockGrain>(ticket);
        await sla.SyncAsync();
        clock.Advance(TimeSpan.FromMinutes(11));
        await sla.AsReference<IActivationProbe>().FireReminderAsync("sla");
        var events = (await sla.GetAsync()).Events.Select(e => e.Milestone).ToList();
        Assert.Equal(["breach-1", "breach-1-change-refused"], events);

        // A ticket whose sync throws every time is skipped and recorded; the next ticket in the batch gets its clocks.
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var healthy = (await scenario.ReceiveAsync(scenario.Message("r2-2", GrainScenario.NewPhone()))).TicketNumber;
        var store = app.Services.GetRequiredService<IRoutingStore>();
        var consumer = app.Services.GetServices<Crm.Service.Grains.Storage.IChangeConsumer>().Single(c => c.Name == "sla");
        await store.PutAsync(RoutingKinds.SlaClocks, "987654", "{ not json");
        await consumer.HandleAsync([
            new Crm.Service.Grains.Storage.Change(1, "ticket", "987654", "updated", clock.GetUtcNow()),
            new Crm.Service.Grains.Storage.Change(2, "ticket", healthy.ToString(System.Globalization.CultureInfo.InvariantCulture), "updated", clock.GetUtcNow()),
        ], CancellationToken.None);
        Assert.NotEmpty((await app.Grains.GetGrain<ISlaClockGrain>(healthy).GetAsync()).Clocks);
        Assert.NotNull(await store.GetAsync(RoutingKinds.SlaFailure, "987654"));
    }

    // R4 (pure): a running next-response clock keeps its start.
    [Fact]
    public void A_running_next_response_clock_keeps_the_first_unanswered_message()
    {
        var t1 = new DateTimeOffset(2026, 11, 24, 9, 0, 0, TimeSpan.Zero);
        var policy = new SlaPolicy { Id = "p", Name = "P", Targets = [new SlaTarget(TicketPriority.Normal, null, TimeSpan.FromHours(1), null)] };
        TicketSnapshot Ticket(DateTimeOffset lastCustomer) => new()
        {
            Number = 1, Subject = "x", Status = TicketStatus.Open, Priority = TicketPriority.Normal, CustomerId = Guid.Empty,
            CreatedAt = t1.AddHours(-1), UpdatedAt = lastCustomer, FirstResponseAt = t1.AddMinutes(-30), LastAgentReplyAt = t1.AddMinutes(-30),
            LastCustomerMessageAt = lastCustomer,
        };
        var started = SlaRules.Sync(new SlaClocks(), Ticket(t1), policy, BusinessCalendar.AlwaysOpen, t1);
        var nudged = SlaRules.Sync(started, Ticket(t1.AddMinutes(50)), policy, BusinessCalendar.AlwaysOpen, t1.AddMinutes(50));
        Assert.Equal(t1, nudged.Clocks[SlaMetric.NextResponse].StartedAt);
        Assert.Equal(t1.AddHours(1), nudged.Clocks[SlaMetric.NextResponse].DueAt(BusinessCalendar.AlwaysOpen));
    }
}
