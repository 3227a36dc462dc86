using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Durability;

public sealed class RestartTests
{
    [Fact]
    public async Task State_survives_a_restart_and_a_reminder_set_before_the_stop_fires_after_it()
    {
        using var data = new TempDirectory();
        var settings = new Dictionary<string, string?> { ["Tickets:ReopenWindow"] = "00:00:05", ["Tickets:ReminderPeriod"] = "00:00:01" };
        long ticket;
        Guid customer;
        DateTimeOffset stoppedAt;
        await using (var first = new CrmApp(data.Path, settings))
        {
            await first.CreateApiChannelAsync();
            var accepted = await (await first.PostMessageAsync(new { messageId = "before-restart", sender = new { id = "r@example.com", kind = "email", name = "Rita" }, text = "Please refund" }))
                .Content.ReadFromJsonAsync<JsonElement>();
            ticket = accepted.GetProperty("ticketNumber").GetInt64();
            customer = accepted.GetProperty("customerId").GetGuid();
            using var agent = await first.AgentAsync();
            (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "resolved", tags = new[] { "refund" } })).EnsureSuccessStatusCode();
            Assert.Equal(1, await first.QueryAsync(db => db.Reminders.CountAsync()));
            var beforeStop = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
            Assert.Equal("resolved", beforeStop.GetProperty("ticket").GetProperty("status").GetString());
            stoppedAt = DateTimeOffset.UtcNow;
        }

        await using var second = new CrmApp(data.Path, settings);
        using var agentAfter = await second.AgentAsync("agent-after");
        var after = await agentAfter.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        Assert.Equal("Please refund", after.GetProperty("timeline")[0].GetProperty("text").GetString());
        Assert.Equal(customer, after.GetProperty("ticket").GetProperty("customerId").GetGuid());
        Assert.Equal(["refund"], after.GetProperty("ticket").GetProperty("tags").EnumerateArray().Select(t => t.GetString()));

        var closed = await Eventually.WaitForAsync(() => second.Grains.GetGrain<ITicketGrain>(ticket).GetAsync(), t => t!.Status == TicketStatus.Closed,
            TimeSpan.FromSeconds(60), "the auto-close reminder after the restart");
        Assert.True(closed!.ClosedAt > stoppedAt, "the ticket was closed by the restarted host");
        var history = await agentAfter.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        Assert.Contains(history.GetProperty("history").EnumerateArray(),
            h => h.GetProperty("action").GetString() == "auto-closed" && h.GetProperty("actor").GetString() == "system");
        Assert.Equal(0, await second.QueryAsync(db => db.Reminders.CountAsync()));
        // The next ticket continues the numbering.
        var next = await (await second.PostMessageAsync(new { messageId = "after-restart", sender = new { id = "other" }, text = "New here" })).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(ticket + 1, next.GetProperty("ticketNumber").GetInt64());
    }
}
