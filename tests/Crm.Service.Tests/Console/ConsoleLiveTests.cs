using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>Presence, the collision indicator, and assignment and mention notifications over the agents' hub.</summary>
public sealed class ConsoleLiveTests : AppTest
{
    private const string Ann = "ann@example.com";
    private const string Bob = "bob@example.com";

    private async Task<long> ReceiveAsync(string id, string sender = "alice")
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name = sender }, subject = "Printer", text = "help" });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private Task<string> UserIdAsync(string email) => App.UserIdAsync(email);

    private HubConnection Hub(ConsoleBrowser browser) => browser.AgentHub(App);

    [Fact]
    public async Task Presence_follows_connections_and_the_chosen_status_and_answers_whether_a_team_has_someone_online()
    {
        using var ann = await ConsoleBrowser.SignedInAsync(App, Ann, ConsoleRoles.Agent);
        using var bob = await ConsoleBrowser.SignedInAsync(App, Bob, ConsoleRoles.Agent);
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("billing", "Billing", false, [await UserIdAsync(Ann)], CancellationToken.None);
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("sales", "Sales", false, [await UserIdAsync(Bob)], CancellationToken.None);
        var presence = App.Services.GetRequiredService<IAgentPresence>();
        Assert.False(await presence.AnyOnlineAsync(null, CancellationToken.None));

        await using var annHub = Hub(ann);
        await using var bobHub = Hub(bob);
        var heard = new ConcurrentQueue<PresenceView>();
        bobHub.On<PresenceView>("PresenceChanged", p => heard.Enqueue(p));
        await bobHub.StartAsync();
        await annHub.StartAsync();
        // StartAsync returns after the handshake; the hub's OnConnectedAsync (which records presence) may run after it.
        await Eventually.WaitForAsync(async () => await presence.AnyOnlineAsync("billing", CancellationToken.None) && await presence.AnyOnlineAsync("sales", CancellationToken.None),
            online => online, what: "ann and bob online once connected");

        var away = await ann.SubmitAsync("/Profile", new() { ["NewPresence"] = "Away" }, "/Profile?handler=Presence");
        Assert.Equal(System.Net.HttpStatusCode.Redirect, away.StatusCode);
        Assert.False(await presence.AnyOnlineAsync("billing", CancellationToken.None));
        Assert.True(await presence.AnyOnlineAsync("sales", CancellationToken.None));
        await Eventually.WaitForAsync(() => Task.FromResult(heard.ToArray()), h => h.Any(p => p.Name == Ann && p.Status == PresenceStatus.Away), what: "bob hears ann is away");
        Assert.Contains("value=\"Away\" selected", await ann.PageAsync("/Profile"), StringComparison.Ordinal);

        await ann.SubmitAsync("/Profile", new() { ["NewPresence"] = "Online" }, "/Profile?handler=Presence");
        Assert.True(await presence.AnyOnlineAsync("billing", CancellationToken.None));
        await annHub.StopAsync();
        await Eventually.WaitForAsync(() => presence.AnyOnlineAsync("billing", CancellationToken.None), online => !online, what: "ann offline after her last page closed");
        Assert.Equal(PresenceStatus.Offline, (await presence.GetAsync(await UserIdAsync(Ann), CancellationToken.None)).Status);
        var list = await bobHub.InvokeAsync<PresenceView[]>("GetPresence");
        Assert.Contains(list, p => p.Name == Bob && p.Status == PresenceStatus.Online);
    }

    [Fact]
    public async Task Agents_on_the_same_ticket_see_each_other_and_who_is_typing()
    {
        var number = await ReceiveAsync("m-1");
        using var ann = await ConsoleBrowser.SignedInAsync(App, Ann, ConsoleRoles.Agent);
        using var bob = await ConsoleBrowser.SignedInAsync(App, Bob, ConsoleRoles.Agent);
        await using var annHub = Hub(ann);
        await using var bobHub = Hub(bob);
        var annSees = new ConcurrentQueue<TicketViewers.ViewerView[]>();
        annHub.On<long, TicketViewers.ViewerView[]>("Viewers", (n, v) => { if (n == number) annSees.Enqueue(v); });
        await annHub.StartAsync();
        await bobHub.StartAsync();

        await annHub.InvokeAsync("WatchTicket", number);
        await bobHub.InvokeAsync("WatchTicket", number);
        await Eventually.WaitForAsync(() => Task.FromResult(annSees.LastOrDefault()), v => v is not null && v.Any(x => x.Name == Bob && !x.Typing), what: "bob on the ticket");
        await bobHub.InvokeAsync("Typing", number, "note");
        await Eventually.WaitForAsync(() => Task.FromResult(annSees.LastOrDefault()), v => v!.Any(x => x.Name == Bob && x.Typing), what: "bob typing");
        await bobHub.StopAsync();
        await Eventually.WaitForAsync(() => Task.FromResult(annSees.LastOrDefault()), v => v!.All(x => x.Name != Bob), what: "bob gone");
    }

    [Fact]
    public async Task Mentions_in_a_note_and_assignments_notify_the_person_and_only_people_who_may_see_the_ticket()
    {
        var number = await ReceiveAsync("m-1");
        var secret = await ReceiveAsync("m-2", "carol");
        using var ann = await ConsoleBrowser.SignedInAsync(App, Ann, ConsoleRoles.Supervisor);
        using var bob = await ConsoleBrowser.SignedInAsync(App, Bob, ConsoleRoles.Agent);
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("vip", "VIP", true, [await UserIdAsync(Ann)], CancellationToken.None);
        await App.Grains.GetGrain<ITicketGrain>(secret).ChangeAsync(new TicketChange { Team = "vip" }, "test");
        await using var bobHub = Hub(bob);
        var notified = new ConcurrentQueue<AgentNotification>();
        bobHub.On<AgentNotification>("Notify", n => notified.Enqueue(n));
        await bobHub.StartAsync();

        await ann.SubmitAsync($"/Tickets/{secret}", new() { ["NoteText"] = "@bob look at this secret" }, $"/Tickets/{secret}?handler=Note");
        await ann.SubmitAsync($"/Tickets/{secret}", new() { ["NewAssignee"] = Bob, ["NewTeam"] = "vip", ["OriginalAssignee"] = "", ["OriginalTeam"] = "vip", ["OriginalStatus"] = "New", ["OriginalPriority"] = "Normal", ["NewStatus"] = "New", ["NewPriority"] = "Normal" }, $"/Tickets/{secret}?handler=Change");
        await ann.SubmitAsync($"/Tickets/{number}", new() { ["NoteText"] = "@bob please call (cc @nobody, @ann)" }, $"/Tickets/{number}?handler=Note");
        await ann.SubmitAsync($"/Tickets/{number}", new() { ["NewAssignee"] = Bob, ["NewTeam"] = "", ["OriginalAssignee"] = "", ["OriginalTeam"] = "", ["OriginalStatus"] = "New", ["OriginalPriority"] = "Normal", ["NewStatus"] = "New", ["NewPriority"] = "Normal" }, $"/Tickets/{number}?handler=Change");

        await Eventually.WaitForAsync(() => Task.FromResult(notified.ToArray()), n => n.Any(x => x.Kind == "assigned" && x.Ticket == number), what: "assignment notification");
        var all = notified.ToArray();
        Assert.Contains(all, x => x.Kind == "mentioned" && x.Ticket == number && x.By == Ann);
        Assert.DoesNotContain(all, x => x.Ticket == secret);
        Assert.Single(all, x => x.Kind == "mentioned");
        Assert.Equal(["bob", "nobody", "ann"], Mentions.Parse("@bob please call (cc @nobody, @ann) mail@example.com"));
        Assert.Equal(["bob@example.com"], Mentions.Parse("ping @bob@example.com."));
    }
}
