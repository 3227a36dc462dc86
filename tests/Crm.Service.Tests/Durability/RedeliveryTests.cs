using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Durability;

public sealed class RedeliveryTests
{
    [Fact]
    public async Task A_redelivery_after_a_restart_does_not_reopen_the_resolved_ticket()
    {
        using var data = new TempDirectory();
        var message = new { messageId = "bridge-42", sender = new { id = "u-42" }, text = "My parcel is late" };
        long ticket;
        Guid first;
        await using (var before = new CrmApp(data.Path))
        {
            await before.CreateApiChannelAsync();
            var accepted = await (await before.PostMessageAsync(message)).Content.ReadFromJsonAsync<JsonElement>();
            ticket = accepted.GetProperty("ticketNumber").GetInt64();
            first = accepted.GetProperty("messageId").GetGuid();
            using var agent = await before.AgentAsync();
            (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "resolved" })).EnsureSuccessStatusCode();
        }

        await using var after = new CrmApp(data.Path);
        var again = await (await after.PostMessageAsync(message)).Content.ReadFromJsonAsync<JsonElement>();

        Assert.True(again.GetProperty("duplicate").GetBoolean());
        Assert.Equal(first, again.GetProperty("messageId").GetGuid());
        Assert.Equal(ticket, again.GetProperty("ticketNumber").GetInt64());
        using var agentAfter = await after.AgentAsync("agent-after");
        var view = await agentAfter.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        Assert.Equal("resolved", view.GetProperty("ticket").GetProperty("status").GetString());
        var key = ticket.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0, await after.QueryAsync(db => db.Audit.CountAsync(a => a.EntityType == "ticket" && a.EntityId == key && a.Action == "customer-replied")));
        Assert.Equal(1, await after.QueryAsync(db => db.Messages.CountAsync(m => m.ExternalId == "bridge-42")));
    }
}
