using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

public sealed class ConsoleSearchTests : AppTest
{
    private async Task<JsonElement> ReceiveAsync(string id, string sender, string name, string text)
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name }, subject = "Subject " + id, text });
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    [Fact]
    public async Task Search_finds_tickets_customers_and_messages_but_nothing_of_a_hidden_team()
    {
        var open = (await ReceiveAsync("m-1", "alice", "Alice Example", "The flux capacitor <b>broke</b>")).GetProperty("ticketNumber").GetInt64();
        var secret = (await ReceiveAsync("m-2", "bob", "Bob Secret", "flux capacitor secret plans")).GetProperty("ticketNumber").GetInt64();
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("vip", "VIP", true, [], CancellationToken.None);
        await App.Grains.GetGrain<ITicketGrain>(secret).ChangeAsync(new TicketChange { Team = "vip" }, "test");
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);
        using var boss = await ConsoleBrowser.SignedInAsync(App, "boss@example.com", ConsoleRoles.Supervisor);

        var byWord = await agent.PageAsync("/Search?q=capacitor");
        var byNumber = await agent.PageAsync($"/Search?q=%23{open}");
        var hiddenNumber = await agent.PageAsync($"/Search?q={secret}");
        var byName = await agent.PageAsync("/Search?q=Alice");
        var byIdentity = await agent.PageAsync("/Search?q=alice");
        var bossWord = await boss.PageAsync("/Search?q=capacitor");

        Assert.Contains($"href=\"/Tickets/{open}\"", byWord, StringComparison.Ordinal);
        Assert.Contains("&lt;b&gt;broke", byWord, StringComparison.Ordinal);
        Assert.DoesNotContain("secret plans", byWord, StringComparison.Ordinal);
        Assert.Contains($"data-ticket=\"{open}\"", byNumber, StringComparison.Ordinal);
        Assert.DoesNotContain($"data-ticket=\"{secret}\"", hiddenNumber, StringComparison.Ordinal);
        Assert.Contains("Alice Example", byName, StringComparison.Ordinal);
        Assert.Contains("data-customer=", byIdentity, StringComparison.Ordinal);
        Assert.Contains("secret plans", bossWord, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await agent.GetAsync("/Search?q=" + new string('x', 201))).StatusCode);
        using var editor = await ConsoleBrowser.SignedInAsync(App, "kb@example.com", ConsoleRoles.KnowledgeEditor);
        Assert.Equal(HttpStatusCode.Redirect, (await editor.GetAsync("/Search?q=capacitor")).StatusCode);
    }
}
