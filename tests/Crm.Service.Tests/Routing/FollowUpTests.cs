using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

public sealed class FollowUpTests
{
    /// <summary>Keeps what the follow-up grains tell people (the console hub in production).</summary>
    internal sealed class RecordingFollowUpNotifier : IFollowUpNotifier
    {
        public ConcurrentQueue<FollowUpNotice> Notices { get; } = new();

        public Task NotifyAsync(FollowUpNotice notice, CancellationToken cancellationToken = default)
        {
            Notices.Enqueue(notice);
            return Task.CompletedTask;
        }
    }

    private static Task FireAsync(CrmApp app, long ticket) =>
        // Orleans ticks on real time; the grain acts on the fake clock, so the test delivers the tick itself.
        app.Grains.GetGrain<ITicketFollowUpGrain>(ticket).AsReference<IActivationProbe>().FireReminderAsync(TicketFollowUpGrain.ReminderName);

    [Fact]
    public async Task A_follow_up_reopens_the_pending_ticket_after_a_restart_once_and_notifies_the_agent()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var notices = new RecordingFollowUpNotifier();
        long ticket;
        string grainId;
        await using (var first = new CrmApp(data.Path, clock: clock, services: s => s.AddSingleton<IFollowUpNotifier>(notices)))
        {
            var scenario = await new GrainScenario(first.Grains).CreateChannelAsync();
            ticket = (await scenario.ReceiveAsync(scenario.Message("fu-1", GrainScenario.NewPhone(), "Call me back next week"))).TicketNumber;
            await first.Grains.GetGrain<ITicketGrain>(ticket).ChangeAsync(new TicketChange { Status = TicketStatus.Pending, Assignee = "agent-7" }, "agent-7");
            using var agent = await first.AgentAsync("alice");
            var missing = await agent.PutAsJsonAsync($"/api/v1/tickets/{ticket}/follow-up", new { note = "no time" });
            Assert.Equal(HttpStatusCode.UnprocessableEntity, missing.StatusCode);
            var set = await agent.PutAsJsonAsync($"/api/v1/tickets/{ticket}/follow-up", new { at = clock.GetUtcNow().AddDays(2), note = "Check the refund arrived" });
            set.EnsureSuccessStatusCode();
            Assert.Equal("apikey:alice", (await set.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("setBy").GetString());
            grainId = first.Grains.GetGrain<ITicketFollowUpGrain>(ticket).GetGrainId().ToString();
            Assert.Equal(1, await first.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == grainId && r.Name == TicketFollowUpGrain.ReminderName)));

            // An early tick (Orleans re-ticks each period) does nothing.
            clock.Advance(TimeSpan.FromDays(1));
            await FireAsync(first, ticket);
            Assert.Equal(TicketStatus.Pending, (await first.Grains.GetGrain<ITicketGrain>(ticket).GetAsync())!.Status);
            Assert.Empty(notices.Notices);
        }

        // The host is down when the follow-up is due and comes back a day late: the reminder is still stored, and its
        // first tick acts at once.
        clock.Advance(TimeSpan.FromDays(2));
        await using var second = new CrmApp(data.Path, clock: clock, services: s => s.AddSingleton<IFollowUpNotifier>(notices));
        Assert.Equal(1, await second.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == grainId && r.Name == TicketFollowUpGrain.ReminderName)));
        await FireAsync(second, ticket);
        await FireAsync(second, ticket);
        var reopened = (await second.Grains.GetGrain<ITicketGrain>(ticket).GetAsync())!;
        Assert.Equal(TicketStatus.Open, reopened.Status);
        var key = ticket.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(1, await second.QueryAsync(db => db.Audit.CountAsync(a => a.EntityType == "ticket" && a.EntityId == key && a.Actor == TicketFollowUpGrain.Actor)));
        var notice = Assert.Single(notices.Notices);
        Assert.Equal(("follow-up-due", (long?)ticket), (notice.Kind, notice.Ticket));
        Assert.Equal(["apikey:alice", "agent-7"], notice.People);
        var fired = (await second.Grains.GetGrain<ITicketFollowUpGrain>(ticket).GetAsync())!;
        Assert.True(fired.Reopened);
        Assert.Equal(clock.GetUtcNow(), fired.FiredAt);
        Assert.Equal(0, await second.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == grainId && r.Name == TicketFollowUpGrain.ReminderName)));
    }

    [Fact]
    public async Task A_follow_up_on_an_open_ticket_only_notifies_and_a_cleared_one_never_fires()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var notices = new RecordingFollowUpNotifier();
        await using var app = new CrmApp(data.Path, clock: clock, services: s => s.AddSingleton<IFollowUpNotifier>(notices));
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var open = (await scenario.ReceiveAsync(scenario.Message("fu-2", GrainScenario.NewPhone()))).TicketNumber;
        var cleared = (await scenario.ReceiveAsync(scenario.Message("fu-3", GrainScenario.NewPhone()))).TicketNumber;
        using var agent = await app.AgentAsync("bob");
        (await agent.PutAsJsonAsync($"/api/v1/tickets/{open}/follow-up", new { at = clock.GetUtcNow().AddHours(1) })).EnsureSuccessStatusCode();
        await app.Grains.GetGrain<ITicketGrain>(cleared).ChangeAsync(new TicketChange { Status = TicketStatus.Pending }, "bob");
        (await agent.PutAsJsonAsync($"/api/v1/tickets/{cleared}/follow-up", new { at = clock.GetUtcNow().AddHours(1) })).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.NoContent, (await agent.DeleteAsync($"/api/v1/tickets/{cleared}/follow-up")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await agent.GetAsync($"/api/v1/tickets/{cleared}/follow-up")).StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await agent.PutAsJsonAsync($"/api/v1/tickets/{open}/follow-up", new { at = clock.GetUtcNow().AddYears(3) })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await agent.PutAsJsonAsync("/api/v1/tickets/99999999/follow-up", new { at = clock.GetUtcNow().AddHours(1) })).StatusCode);

        clock.Advance(TimeSpan.FromHours(2));
        await FireAsync(app, open);
        await FireAsync(app, cleared);
        Assert.Equal(TicketStatus.New, (await app.Grains.GetGrain<ITicketGrain>(open).GetAsync())!.Status);
        Assert.Equal(TicketStatus.Pending, (await app.Grains.GetGrain<ITicketGrain>(cleared).GetAsync())!.Status);
        var notice = Assert.Single(notices.Notices);
        Assert.Equal(open, notice.Ticket);
        Assert.False((await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{open}/follow-up")).GetProperty("reopened").GetBoolean());
    }
}
