using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Api;

/// <summary>A personal API key reaches the tickets its person's console would: a restricted team's ticket is "no such
/// ticket" to an agent outside the team, for reads, replies (JSON and with files), notes and changes (email5 review ER7).</summary>
public sealed class TicketReachTests : AppTest
{
    private async Task<long> ReceiveAsync(string id, string sender)
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name = sender }, subject = "Subject " + id, text = "text " + id });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private Task<HttpClient> PersonalKeyAsync(ConsoleBrowser browser) => browser.PersonalKeyAsync(App);

    [Fact]
    public async Task A_personal_key_of_an_agent_outside_a_restricted_team_can_neither_read_nor_reply_to_nor_change_its_tickets()
    {
        var secret = await ReceiveAsync("m-secret", "bob");
        var open = await ReceiveAsync("m-open", "alice");
        using var outsider = await ConsoleBrowser.SignedInAsync(App, "outsider@example.com", ConsoleRoles.Agent);
        using var member = await ConsoleBrowser.SignedInAsync(App, "member@example.com", ConsoleRoles.Agent);
        string memberId;
        using (var scope = App.Services.CreateScope())
            memberId = (await scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>().FindByEmailAsync("member@example.com"))!.Id;
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("vip", "VIP", true, [memberId], CancellationToken.None);
        await App.Grains.GetGrain<ITicketGrain>(secret).ChangeAsync(new TicketChange { Team = "vip" }, "test");
        using var outsiderApi = await PersonalKeyAsync(outsider);
        using var memberApi = await PersonalKeyAsync(member);

        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.GetAsync($"/api/v1/tickets/{secret}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.GetAsync($"/api/v1/tickets/{secret}/timeline")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.GetAsync($"/api/v1/tickets/{secret}/history")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.PostAsJsonAsync($"/api/v1/tickets/{secret}/reply", new { text = "peek" })).StatusCode);
        using (var form = new MultipartFormDataContent { { new StringContent("peek"), "text" } })
            Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.PostAsync($"/api/v1/tickets/{secret}/reply", form)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.PostAsJsonAsync($"/api/v1/tickets/{secret}/notes", new { text = "peek" })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.PatchAsJsonAsync($"/api/v1/tickets/{secret}", new { status = "Resolved" })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.GetAsync($"/api/v1/tickets/{secret}/sla")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.GetAsync($"/api/v1/tickets/{secret}/follow-up")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.DeleteAsync($"/api/v1/tickets/{secret}/follow-up")).StatusCode);
        // A visible ticket merged into the hidden one: refused, and the visible ticket is not merged.
        var merge = await outsiderApi.PostAsJsonAsync($"/api/v1/tickets/{open}/merge", new { into = secret });
        Assert.Equal(HttpStatusCode.NotFound, merge.StatusCode);
        Assert.Null(await App.QueryAsync(db => db.Tickets.Where(t => t.Number == open).Select(t => t.MergedInto).SingleAsync()));
        Assert.False(await App.QueryAsync(db => db.Messages.AnyAsync(m => m.TicketNumber == secret && m.Direction == MessageDirection.Outbound)));

        // The same key reaches the tickets of no team, and the team's member reaches the team's ticket.
        Assert.Equal(HttpStatusCode.OK, (await outsiderApi.GetAsync($"/api/v1/tickets/{open}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await memberApi.GetAsync($"/api/v1/tickets/{secret}")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await memberApi.PostAsJsonAsync($"/api/v1/tickets/{secret}/reply", new { text = "answer" })).StatusCode);
    }
}
