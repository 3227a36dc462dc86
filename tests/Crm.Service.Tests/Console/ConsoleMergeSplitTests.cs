using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Crm.Service.Infrastructure.Teams;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>Merge and split from the ticket page, through the same grain calls as the API.</summary>
public sealed class ConsoleMergeSplitTests : AppTest
{
    private async Task<long> ReceiveAsync(string id, string thread, string text)
    {
        var response = await App.PostMessageAsync(new { messageId = id, threadKey = thread, sender = new { id = "same-customer", name = "Kim" }, text });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    [Fact]
    public async Task A_supervisor_merges_from_the_ticket_page_and_an_agent_splits_a_message_off()
    {
        var first = await ReceiveAsync("m1", "t1", "my order is late");
        var second = await ReceiveAsync("m2", "t2", "also, the order is late");
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);
        using var supervisor = await ConsoleBrowser.SignedInAsync(App, "sue@example.com", ConsoleRoles.Supervisor, ConsoleRoles.Agent);

        Assert.DoesNotContain("id=\"merge-form\"", await agent.PageAsync($"/Tickets/{second}"), StringComparison.Ordinal);
        var refused = await agent.SubmitAsync($"/Tickets/{second}", new() { ["MergeTarget"] = first.ToString() }, $"/Tickets/{second}?handler=Merge");
        Assert.Contains("/Account/AccessDenied", refused.Headers.Location?.ToString() ?? "", StringComparison.Ordinal);
        Assert.Null((await App.Grains.GetGrain<ITicketGrain>(second).GetAsync())!.MergedInto);

        var merged = await supervisor.SubmitAsync($"/Tickets/{second}", new() { ["MergeTarget"] = first.ToString() }, $"/Tickets/{second}?handler=Merge");
        Assert.Equal((HttpStatusCode.Redirect, $"/Tickets/{first}"), (merged.StatusCode, merged.Headers.Location?.ToString()));
        Assert.Equal(first, (await App.Grains.GetGrain<ITicketGrain>(second).GetAsync())!.MergedInto);
        var intoMissing = await supervisor.SubmitAsync($"/Tickets/{first}", new() { ["MergeTarget"] = "999999" }, $"/Tickets/{first}?handler=Merge");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, intoMissing.StatusCode);

        // Both messages are on the first ticket now; the agent splits the second one off again.
        var page = await agent.PageAsync($"/Tickets/{first}");
        var message = await App.QueryAsync(db => db.Messages.Where(m => m.Text == "also, the order is late").Select(m => m.Id).SingleAsync());
        Assert.Contains($"name=\"SplitMessage\" value=\"{message}\"", page, StringComparison.Ordinal);
        var split = await agent.SubmitAsync($"/Tickets/{first}", new() { ["SplitMessage"] = message.ToString() }, $"/Tickets/{first}?handler=Split");
        Assert.Equal(HttpStatusCode.Redirect, split.StatusCode);
        var created = long.Parse(split.Headers.Location!.ToString().Split('/')[^1]);
        Assert.NotEqual(first, created);
        Assert.Equal(created, await App.QueryAsync(db => db.Messages.Where(m => m.Id == message).Select(m => m.TicketNumber).SingleAsync()));
        // A made-up message id is refused with the page, not a crash.
        var bogus = await agent.SubmitAsync($"/Tickets/{first}", new() { ["SplitMessage"] = Guid.NewGuid().ToString() }, $"/Tickets/{first}?handler=Split");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, bogus.StatusCode);
    }

    [Fact]
    public async Task A_message_split_off_a_restricted_teams_ticket_stays_in_that_team()
    {
        using var member = await ConsoleBrowser.SignedInAsync(App, "lee@example.com", ConsoleRoles.Agent);
        using var outsider = await ConsoleBrowser.SignedInAsync(App, "out@example.com", ConsoleRoles.Agent);
        string memberId;
        using (var scope = App.Services.CreateScope())
            memberId = (await scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>().FindByEmailAsync("lee@example.com"))!.Id;
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("legal", "Legal", true, [memberId], CancellationToken.None);
        var ticket = await ReceiveAsync("r1", "t1", "about the contract");
        await ReceiveAsync("r2", "t1", "and the other matter");
        await App.Grains.GetGrain<ITicketGrain>(ticket).ChangeAsync(new TicketChange { Team = "legal", Priority = TicketPriority.High }, "test");
        var message = await App.QueryAsync(db => db.Messages.Where(m => m.Text == "and the other matter").Select(m => m.Id).SingleAsync());

        var split = await member.SubmitAsync($"/Tickets/{ticket}", new() { ["SplitMessage"] = message.ToString() }, $"/Tickets/{ticket}?handler=Split");
        var created = long.Parse(split.Headers.Location!.ToString().Split('/')[^1]);

        var view = (await App.Grains.GetGrain<ITicketGrain>(created).GetAsync())!;
        Assert.Equal(("legal", TicketPriority.High), (view.Team, view.Priority));
        Assert.Equal(HttpStatusCode.NotFound, (await outsider.GetAsync($"/Tickets/{created}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await member.GetAsync($"/Tickets/{created}")).StatusCode);
    }
}
