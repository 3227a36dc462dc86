using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Durability;

public sealed class RestartTests
{
    [Fact]
    public async Task State_and_the_auto_close_reminder_survive_a_restart_and_the_reminder_closes_the_ticket_after_it()
    {
        using var data = new TempDirectory();
        // The production window; the grains' clock is advanced past it instead of waiting for it.
        var window = TimeSpan.FromDays(7);
        var settings = new Dictionary<string, string?> { ["Tickets:ReopenWindow"] = window.ToString("c", System.Globalization.CultureInfo.InvariantCulture) };
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        long ticket;
        Guid customer;
        DateTimeOffset resolvedAt;
        string reminderGrainId;
        await using (var first = new CrmApp(data.Path, settings, clock))
        {
            await first.CreateApiChannelAsync();
            var accepted = await (await first.PostMessageAsync(new { messageId = "before-restart", sender = new { id = "r@example.com", kind = "email", name = "Rita" }, text = "Please refund" }))
                .Content.ReadFromJsonAsync<JsonElement>();
            ticket = accepted.GetProperty("ticketNumber").GetInt64();
            customer = accepted.GetProperty("customerId").GetGuid();
            using var agent = await first.AgentAsync();
            (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "resolved", tags = new[] { "refund" } })).EnsureSuccessStatusCode();
            resolvedAt = clock.GetUtcNow();
            reminderGrainId = first.Grains.GetGrain<ITicketGrain>(ticket).GetGrainId().ToString();
            Assert.Equal(1, await first.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == reminderGrainId)));
            var beforeStop = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
            Assert.Equal("resolved", beforeStop.GetProperty("ticket").GetProperty("status").GetString());
        }

        clock.Advance(TimeSpan.FromDays(1));
        await using var second = new CrmApp(data.Path, settings, clock);
        using var agentAfter = await second.AgentAsync("agent-after");
        var after = await agentAfter.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        Assert.Equal("Please refund", after.GetProperty("timeline")[0].GetProperty("text").GetString());
        Assert.Equal(customer, after.GetProperty("ticket").GetProperty("customerId").GetGuid());
        Assert.Equal(["refund"], after.GetProperty("ticket").GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(1, await second.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == reminderGrainId)));

        // Orleans ticks on real time; the grain acts on its stored resolve time and its clock, so a tick is delivered by hand.
        var grain = second.Grains.GetGrain<ITicketGrain>(ticket);
        await grain.AsReference<IActivationProbe>().FireReminderAsync("auto-close");
        Assert.Equal(TicketStatus.Resolved, (await grain.GetAsync())!.Status);

        clock.Advance(window);
        await grain.AsReference<IActivationProbe>().FireReminderAsync("auto-close");

        var closed = (await grain.GetAsync())!;
        Assert.Equal(TicketStatus.Closed, closed.Status);
        Assert.Equal(resolvedAt, closed.ResolvedAt);
        Assert.Equal(clock.GetUtcNow(), closed.ClosedAt);
        var history = await agentAfter.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        Assert.Contains(history.GetProperty("history").EnumerateArray(),
            h => h.GetProperty("action").GetString() == "auto-closed" && h.GetProperty("actor").GetString() == "system");
        Assert.Equal(0, await second.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == reminderGrainId)));
        // The next ticket continues the numbering. The bridge signs with the service's (fake) time, or the signature is stale.
        using var bridge = second.CreateClient();
        var next = await (await bridge.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret,
            JsonSerializer.Serialize(new { messageId = "after-restart", sender = new { id = "other" }, text = "New here" }), clock.GetUtcNow())))
            .Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(ticket + 1, next.GetProperty("ticketNumber").GetInt64());
    }
}
