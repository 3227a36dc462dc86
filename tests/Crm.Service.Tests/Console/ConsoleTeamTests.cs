using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>Teams with members: the admin API and page, "My teams" and the team filter, and restricted teams hidden
/// from agents outside them on every path (queue, counts, ticket page and its handlers, customer page, hub).</summary>
public sealed class ConsoleTeamTests : AppTest
{
    private const string Member = "member@example.com";
    private const string Outsider = "outsider@example.com";
    private const string Boss = "boss@example.com";

    private Task<(long Number, Guid Customer)> ReceiveAsync(string id, string sender) => App.ReceiveAsync(id, sender, "Secret deal ", "confidential ");

    private Task<string> UserIdAsync(string email) => App.UserIdAsync(email);

    private async Task SaveTeamAsync(string id, bool restricted, params string[] memberEmails)
    {
        var ids = new List<string>();
        foreach (var email in memberEmails)
            ids.Add(await UserIdAsync(email));
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync(id, id.ToUpperInvariant(), restricted, ids, CancellationToken.None);
    }

    private Task SetTeamAsync(long number, string? team) =>
        App.Grains.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Team = team ?? "" }, "test");

    private HubConnection Hub(ConsoleBrowser browser) => browser.AgentHub(App);

    [Fact]
    public async Task An_agent_outside_a_restricted_team_reaches_neither_its_queue_nor_its_tickets_nor_their_handlers()
    {
        var (secret, customer) = await ReceiveAsync("m-1", "alice");
        var (open, _) = await ReceiveAsync("m-2", "bob");
        using var member = await ConsoleBrowser.SignedInAsync(App, Member, ConsoleRoles.Agent);
        using var outsider = await ConsoleBrowser.SignedInAsync(App, Outsider, ConsoleRoles.Agent);
        using var boss = await ConsoleBrowser.SignedInAsync(App, Boss, ConsoleRoles.Supervisor);
        await SaveTeamAsync("vip", restricted: true, Member);
        await SetTeamAsync(secret, "vip");
        var attachment = Guid.NewGuid();

        foreach (var path in new[] { $"/Tickets/{secret}", $"/Tickets/{secret}?handler=Timeline", $"/Tickets/{secret}?handler=Attachment&id={attachment}" })
            Assert.Equal(HttpStatusCode.NotFound, (await outsider.GetAsync(path)).StatusCode);
        foreach (var handler in new[] { "Note", "Reply", "Change", "Tags" })
        {
            var post = await outsider.SubmitAsync($"/Tickets/{open}", new() { ["NoteText"] = "x", ["ReplyText"] = "x", ["NewStatus"] = "Closed", ["NewAssignee"] = Outsider, ["TagsText"] = "x" }, $"/Tickets/{secret}?handler={handler}");
            Assert.Equal(HttpStatusCode.NotFound, post.StatusCode);
        }
        foreach (var path in new[] { "/Queues/Open", "/Queues/Open?team=vip", "/Queues/Teams", $"/Customers/{customer}" })
        {
            var page = await outsider.PageAsync(path);
            Assert.DoesNotContain($"data-ticket=\"{secret}\"", page, StringComparison.Ordinal);
            Assert.DoesNotContain("Secret deal m-1", page, StringComparison.Ordinal);
        }
        Assert.Contains($"data-ticket=\"{open}\"", await outsider.PageAsync("/Queues/Open"), StringComparison.Ordinal);
        // Nothing changed behind the 404s.
        var ticket = await App.QueryAsync(db => Task.FromResult(db.Tickets.Single(t => t.Number == secret)));
        Assert.Equal((TicketStatus.New, (string?)null, 1), (ticket.Status, ticket.Assignee, await App.QueryAsync(db => Task.FromResult(db.Messages.Count(m => m.TicketNumber == secret)))));
        // Members and supervisors see it.
        Assert.Contains("confidential m-1", await member.PageAsync($"/Tickets/{secret}"), StringComparison.Ordinal);
        Assert.Contains($"data-ticket=\"{secret}\"", await member.PageAsync("/Queues/Teams"), StringComparison.Ordinal);
        Assert.Contains($"data-ticket=\"{secret}\"", await boss.PageAsync("/Queues/Open"), StringComparison.Ordinal);
        Assert.Contains("confidential m-1", await boss.PageAsync($"/Tickets/{secret}"), StringComparison.Ordinal);
        // The counts leave it out for the outsider only.
        // One wait for the whole state: the outsider's count alone also holds while the feed lags one change behind.
        var counts = App.Services.GetRequiredService<QueueCounts>();
        await Eventually.WaitForAsync(async () => (Outsider: await counts.GetAsync(Outsider, [], ["vip"], CancellationToken.None), Member: await counts.GetAsync(Member, ["vip"], [], CancellationToken.None)),
            c => c.Outsider.Open == 1 && c.Member.Open == 2 && c.Member.MyTeams == 1, what: "the counts with the restricted ticket");
        Assert.Equal(["vip"], await App.Services.GetRequiredService<TeamDirectory>().RestrictedTeamsWithoutAsync(await UserIdAsync(Outsider), CancellationToken.None));
        Assert.Empty(await App.Services.GetRequiredService<TeamDirectory>().RestrictedTeamsWithoutAsync(await UserIdAsync(Member), CancellationToken.None));
    }

    [Fact]
    public async Task An_agent_outside_a_restricted_team_hears_no_hub_event_of_its_tickets_and_cannot_watch_them()
    {
        var (secret, _) = await ReceiveAsync("m-1", "alice");
        using var member = await ConsoleBrowser.SignedInAsync(App, Member, ConsoleRoles.Agent);
        using var outsider = await ConsoleBrowser.SignedInAsync(App, Outsider, ConsoleRoles.Agent);
        using var boss = await ConsoleBrowser.SignedInAsync(App, Boss, ConsoleRoles.Supervisor);
        await SaveTeamAsync("vip", restricted: true, Member);
        await SetTeamAsync(secret, "vip");
        await using var memberHub = Hub(member);
        await using var outsiderHub = Hub(outsider);
        await using var bossHub = Hub(boss);
        var heard = new ConcurrentDictionary<string, ConcurrentBag<long>>();
        foreach (var (name, hub) in new[] { ("member", memberHub), ("outsider", outsiderHub), ("boss", bossHub) })
        {
            var bag = heard.GetOrAdd(name, _ => []);
            hub.On<long[]>("QueuesChanged", tickets => { foreach (var t in tickets) bag.Add(t); });
            hub.On<long>("TicketChanged", t => bag.Add(-t));
            await hub.StartAsync();
        }

        var watch = await Record.ExceptionAsync(() => outsiderHub.InvokeAsync("WatchTicket", secret));
        await memberHub.InvokeAsync("WatchTicket", secret);
        await ReceiveAsync("m-1b", "alice"); // a new message on the restricted ticket
        var (open, _) = await ReceiveAsync("m-2", "bob"); // then an open ticket, which everybody hears

        Assert.IsType<Microsoft.AspNetCore.SignalR.HubException>(watch);
        await Eventually.WaitForAsync(() => Task.FromResult(heard["outsider"].ToArray()), h => h.Contains(open), what: "the outsider hears the open ticket");
        await Eventually.WaitForAsync(() => Task.FromResult(heard["member"].ToArray()), h => h.Contains(secret) && h.Contains(-secret) && h.Contains(open), what: "the member hears the restricted ticket");
        await Eventually.WaitForAsync(() => Task.FromResult(heard["boss"].ToArray()), h => h.Contains(secret), what: "the supervisor hears the restricted ticket");
        Assert.DoesNotContain(secret, heard["outsider"]);
        Assert.DoesNotContain(-secret, heard["outsider"]);
        var counts = await outsiderHub.InvokeAsync<QueueCountsView>("GetCounts");
        Assert.Equal(1, counts.Open);
    }

    [Fact]
    public async Task My_teams_lists_my_teams_tickets_and_the_team_filter_narrows_a_queue()
    {
        var (billing, _) = await ReceiveAsync("m-1", "alice");
        var (other, _) = await ReceiveAsync("m-2", "bob");
        using var agent = await ConsoleBrowser.SignedInAsync(App, Member, ConsoleRoles.Agent);
        await SaveTeamAsync("billing", restricted: false, Member);
        await SaveTeamAsync("sales", restricted: false);
        await SetTeamAsync(billing, "billing");
        await SetTeamAsync(other, "sales");

        var mine = await agent.PageAsync("/Queues/Teams");
        var filtered = await agent.PageAsync("/Queues/Open?team=sales");
        var none = await agent.PageAsync("/Queues/Open?team=-");

        Assert.Contains($"data-ticket=\"{billing}\"", mine, StringComparison.Ordinal);
        Assert.DoesNotContain($"data-ticket=\"{other}\"", mine, StringComparison.Ordinal);
        Assert.Contains($"data-ticket=\"{other}\"", filtered, StringComparison.Ordinal);
        Assert.DoesNotContain($"data-ticket=\"{billing}\"", filtered, StringComparison.Ordinal);
        Assert.DoesNotContain("data-ticket=\"", none, StringComparison.Ordinal);
        var memberId = await UserIdAsync(Member);
        await Eventually.WaitForAsync(() => App.Services.GetRequiredService<TicketAccess>().CountsAsync(SignedInPrincipal(Member, memberId), CancellationToken.None),
            c => c.MyTeams == 1, what: "My teams count");
        // An unknown team cannot be set from the ticket page.
        var unknown = await agent.SubmitAsync($"/Tickets/{billing}", new() { ["NewTeam"] = "nope", ["NewAssignee"] = "", ["OriginalTeam"] = "billing", ["OriginalAssignee"] = "", ["OriginalStatus"] = "New", ["OriginalPriority"] = "Normal", ["NewStatus"] = "New", ["NewPriority"] = "Normal" }, $"/Tickets/{billing}?handler=Change");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, unknown.StatusCode);
        Assert.Contains("There is no team", await unknown.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static System.Security.Claims.ClaimsPrincipal SignedInPrincipal(string name, string id) =>
        new(new System.Security.Claims.ClaimsIdentity([
            new(System.Security.Claims.ClaimTypes.Name, name), new(System.Security.Claims.ClaimTypes.NameIdentifier, id),
            new(System.Security.Claims.ClaimTypes.Role, ConsoleRoles.Agent)], "test"));

    [Fact]
    public async Task The_admin_api_manages_teams_with_members_by_email_and_refuses_bad_input()
    {
        await ConsoleBrowser.CreateUserAsync(App, Member, ConsoleRoles.Agent);
        using var admin = App.Admin();
        using var agentKey = App.CreateClient();
        var created = await (await admin.PostAsJsonAsync("/api/v1/admin/api-keys", new { name = "agent", role = "agent" })).Content.ReadFromJsonAsync<JsonElement>();
        agentKey.DefaultRequestHeaders.Add("X-Api-Key", created.GetProperty("key").GetString());

        var put = await admin.PutAsJsonAsync("/api/v1/admin/teams/vip", new { name = "VIP", restricted = true, members = new[] { Member } });
        var update = await admin.PutAsJsonAsync("/api/v1/admin/teams/vip", new { name = "VIP customers", restricted = true, members = Array.Empty<string>() });
        var badId = await admin.PutAsJsonAsync("/api/v1/admin/teams/Bad%20Id", new { name = "x" });
        var unknownMember = await admin.PutAsJsonAsync("/api/v1/admin/teams/x", new { name = "x", members = new[] { "ghost@example.com" } });
        var noName = await admin.PutAsJsonAsync("/api/v1/admin/teams/x", new { members = Array.Empty<string>() });
        var byAgent = await agentKey.PutAsJsonAsync("/api/v1/admin/teams/y", new { name = "y" });

        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        var first = await put.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal([Member], first.GetProperty("members").EnumerateArray().Select(m => m.GetString()));
        Assert.True(first.GetProperty("restricted").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        var list = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/teams");
        var only = Assert.Single(list.EnumerateArray());
        Assert.Equal(("VIP customers", 0), (only.GetProperty("name").GetString(), only.GetProperty("members").GetArrayLength()));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badId.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, unknownMember.StatusCode);
        Assert.Contains("ghost@example.com", await unknownMember.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, noName.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, byAgent.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/admin/teams/vip")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/admin/teams/vip")).StatusCode);
    }

    [Fact]
    public async Task An_admin_manages_teams_on_the_admin_page_and_an_agent_cannot()
    {
        await ConsoleBrowser.CreateUserAsync(App, Member, ConsoleRoles.Agent);
        using var admin = await ConsoleBrowser.SignedInAsync(App, "admin@example.com", ConsoleRoles.Admin);
        using var agent = await ConsoleBrowser.SignedInAsync(App, Outsider, ConsoleRoles.Agent);

        var saved = await admin.SubmitAsync("/Admin/Teams", new() { ["TeamId"] = "vip", ["Name"] = "VIP", ["Restricted"] = "true", ["Members"] = Member }, "/Admin/Teams?handler=Save");
        var ghost = await admin.SubmitAsync("/Admin/Teams", new() { ["TeamId"] = "x", ["Name"] = "X", ["Members"] = "ghost@example.com" }, "/Admin/Teams?handler=Save");
        var byAgent = await agent.SubmitAsync("/Queues", new() { ["TeamId"] = "evil", ["Name"] = "Evil" }, "/Admin/Teams?handler=Save");

        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        var team = await App.Services.GetRequiredService<TeamDirectory>().GetAsync("vip", CancellationToken.None);
        Assert.True(team!.Restricted);
        Assert.Equal([await UserIdAsync(Member)], team.MemberIds);
        Assert.Contains(Member, await admin.PageAsync("/Admin/Teams"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, ghost.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, byAgent.StatusCode);
        Assert.Contains("/Account/AccessDenied", byAgent.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Null(await App.Services.GetRequiredService<TeamDirectory>().GetAsync("evil", CancellationToken.None));
        Assert.Equal(HttpStatusCode.Redirect, (await agent.GetAsync("/Admin/Teams")).StatusCode);
    }
}
