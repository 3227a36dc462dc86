using System.Net;
using System.Net.Http.Json;
using Crm.Service.Contracts;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Console;

/// <summary>Issue 17, "Log a call" (console7): a logged call moves the ticket as a message of its direction would. The
/// customer's call reopens a resolved ticket and starts the next-response clock; the agent's call is the agent's
/// response (first and next response); a closed ticket takes no call.</summary>
public sealed class ConsoleCallEffectsTests
{
    [Fact]
    public async Task An_inbound_call_reopens_and_starts_the_next_response_clock_and_an_outbound_call_is_the_agents_response()
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
        // The channel API checks signatures on real time; with the fake clock moved on, messages come in through the grains.
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var ticket = (await scenario.ReceiveAsync(scenario.Message("call-sla-1", GrainScenario.NewPhone(), "Please call me back"))).TicketNumber;
        var grain = app.Grains.GetGrain<ITicketGrain>(ticket);
        var sla = app.Grains.GetGrain<ISlaClockGrain>(ticket);
        await sla.SyncAsync();
        using var agent = await app.AgentAsync();
        async Task<HttpResponseMessage> CallAsync(string direction) =>
            await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/calls", new { direction, phone = "+15550109999", durationSeconds = 60 });

        // The agent calls back: the first response, and the new ticket is open (as after a reply).
        clock.Advance(TimeSpan.FromMinutes(5));
        var calledBack = clock.GetUtcNow();
        Assert.Equal(HttpStatusCode.Created, (await CallAsync("out")).StatusCode);
        var afterOut = (await grain.GetAsync())!;
        Assert.Equal((TicketStatus.Open, calledBack), (afterOut.Status, afterOut.FirstResponseAt));
        var first = Assert.Single((await sla.SyncAsync()).Clocks, c => c.Metric == SlaMetric.FirstResponse);
        Assert.Equal((false, calledBack), (first.Running, first.StoppedAt));

        // The customer calls: the next-response clock runs from the call, as from a message.
        clock.Advance(TimeSpan.FromMinutes(5));
        var asked = clock.GetUtcNow();
        Assert.Equal(HttpStatusCode.Created, (await CallAsync("in")).StatusCode);
        Assert.Equal(asked, (await grain.GetAsync())!.LastCustomerMessageAt);
        var next = Assert.Single((await sla.SyncAsync()).Clocks, c => c.Metric == SlaMetric.NextResponse);
        Assert.Equal((true, asked.AddHours(1)), (next.Running, next.DueAt));

        // The agent's next call answers it.
        clock.Advance(TimeSpan.FromMinutes(5));
        var answered = clock.GetUtcNow();
        Assert.Equal(HttpStatusCode.Created, (await CallAsync("out")).StatusCode);
        next = (await sla.SyncAsync()).Clocks.Single(c => c.Metric == SlaMetric.NextResponse);
        Assert.Equal((false, answered), (next.Running, next.StoppedAt));

        // Resolved, then the customer calls again: the ticket is open again, like after the customer's message.
        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "resolved" })).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.Created, (await CallAsync("in")).StatusCode);
        Assert.Equal(TicketStatus.Open, (await grain.GetAsync())!.Status);
        Assert.Contains(await app.QueryAsync(db => db.Audit.Where(a => a.EntityId == ticket.ToString() && a.Action == "call-logged" && a.Field == "status").ToListAsync()),
            a => a.OldValue == nameof(TicketStatus.Resolved) && a.NewValue == nameof(TicketStatus.Open));

        // An outbound call on a pending ticket keeps it pending (the agent waits for the customer, as after a reply).
        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "pending" })).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.Created, (await CallAsync("out")).StatusCode);
        Assert.Equal(TicketStatus.Pending, (await grain.GetAsync())!.Status);

        // Closed: neither call is taken (nothing stored); the customer's next message opens a follow-up.
        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "closed" })).EnsureSuccessStatusCode();
        var calls = await app.QueryAsync(db => db.Messages.CountAsync(m => m.TicketNumber == ticket && m.ChannelAccountId == PhoneCalls.Channel));
        Assert.Equal(HttpStatusCode.Conflict, (await CallAsync("in")).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await CallAsync("out")).StatusCode);
        Assert.Equal(calls, await app.QueryAsync(db => db.Messages.CountAsync(m => m.TicketNumber == ticket && m.ChannelAccountId == PhoneCalls.Channel)));
        Assert.Equal(TicketStatus.Closed, (await grain.GetAsync())!.Status);
    }
}
