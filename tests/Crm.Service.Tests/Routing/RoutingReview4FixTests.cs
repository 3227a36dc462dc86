using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Grains.Routing;
using Crm.Service.Grains.Sla;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

/// <summary>Fixes of the fourth cold review of routing/SLA (H1, M1-M3 in routing4.md), each with the test that failed before.</summary>
public sealed class RoutingReview4FixTests
{
    private const string Ann = "ann@example.com";
    private const string Bob = "bob@example.com";

    private static async Task<string> UserIdAsync(CrmApp app, string email)
    {
        using var scope = app.Services.CreateScope();
        return (await scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>().FindByEmailAsync(email))!.Id;
    }

    private static async Task<Guid> RecordAsync(HttpClient client, Guid customer, object body)
    {
        var created = await client.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", body);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (await created.Content.ReadFromJsonAsync<JsonElement>(CrmApp.Json)).GetProperty("id").GetGuid();
    }

    // H1: a follow-up recorded with an API key (an integration) had the key as its owner, and the reminder went to
    // nobody: API-key actors have no console. It now goes to who can act: the team, else the ticket's assignee, else
    // the admins, and the console shows it as a follow-up (linking the customer when there is no ticket).
    [Fact]
    public async Task A_follow_up_owned_by_an_api_key_reminds_the_team_else_the_assignee_else_the_admins_in_the_console()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await app.CreateApiChannelAsync();
        using var ann = await ConsoleBrowser.SignedInAsync(app, Ann, ConsoleRoles.Admin);
        using var bob = await ConsoleBrowser.SignedInAsync(app, Bob, ConsoleRoles.Agent);
        await app.Services.GetRequiredService<TeamDirectory>().SaveAsync("sales", "Sales", false, [await UserIdAsync(app, Bob)], CancellationToken.None);
        await using var annHub = ann.AgentHub(app);
        await using var bobHub = bob.AgentHub(app);
        var annHeard = new ConcurrentQueue<AgentNotification>();
        var bobHeard = new ConcurrentQueue<AgentNotification>();
        annHub.On<AgentNotification>("Notify", n => annHeard.Enqueue(n));
        bobHub.On<AgentNotification>("Notify", n => bobHeard.Enqueue(n));
        await annHub.StartAsync();
        await bobHub.StartAsync();
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var opened = await scenario.ReceiveAsync(scenario.Message("h1-1", GrainScenario.NewPhone(), "Please call me"));
        using var integration = await app.AgentAsync("crm-sync");

        async Task FireAsync(Guid entry)
        {
            var grain = app.Grains.GetGrain<ICustomerFollowUpGrain>(entry);
            await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
            Assert.NotNull((await grain.GetAsync())!.RemindedAt);
        }

        // The team's members are told.
        var due = DateTimeOffset.UtcNow.AddMinutes(-1);
        await FireAsync(await RecordAsync(integration, opened.CustomerId, new { how = "phone", nextDueAt = due, team = "sales" }));
        var toTeam = await Eventually.WaitForAsync(() => Task.FromResult(bobHeard.ToArray()), n => n.Length > 0, what: "bob (sales) told of the due follow-up");
        Assert.Equal(("customer-follow-up-due", 0L, opened.CustomerId), (toTeam[0].Kind, toTeam[0].Ticket, toTeam[0].Customer));

        // No team, but a ticket with an assignee: the assignee.
        await app.Grains.GetGrain<ITicketGrain>(opened.TicketNumber).ChangeAsync(new TicketChange { Assignee = Bob }, "test");
        await FireAsync(await RecordAsync(integration, opened.CustomerId, new { how = "email", nextDueAt = due, ticket = opened.TicketNumber }));
        var toAssignee = await Eventually.WaitForAsync(() => Task.FromResult(bobHeard.ToArray()), n => n.Length > 1, what: "bob (assignee) told");
        Assert.Equal(("customer-follow-up-due", opened.TicketNumber), (toAssignee[1].Kind, toAssignee[1].Ticket));

        // Neither: the admins.
        await FireAsync(await RecordAsync(integration, opened.CustomerId, new { how = "visit", nextDueAt = due }));
        var toAdmins = await Eventually.WaitForAsync(() => Task.FromResult(annHeard.ToArray()), n => n.Length > 0, what: "ann (admin) told");
        Assert.Equal(("customer-follow-up-due", opened.CustomerId), (toAdmins[0].Kind, toAdmins[0].Customer));
        Assert.Single(annHeard);
        Assert.Equal(2, bobHeard.Count);
    }

    // M3: the routing wait was stored before its reminder was registered: a crash in between left a stored wait that
    // no tick would ever end (the consumers leave waiting tickets alone), so the ticket was never routed.
    [Fact]
    public async Task A_crash_after_the_routing_wait_is_stored_still_leaves_its_reminder_and_the_ticket_is_routed()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock, services: s => { RoutingReview2FixTests.WithoutFeed(s); RoutingReview2FixTests.InterceptRoutingStore(s); });
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/teams/billing", new { name = "Billing" })).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/refunds", new
        {
            name = "Refunds", conditions = new { keywords = new[] { "refund" } }, team = "billing",
        })).EnsureSuccessStatusCode();
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var first = await scenario.ReceiveAsync(scenario.Message("m3-1", GrainScenario.NewPhone(), "Where is my refund?"));
        // An agent's reply split into a ticket of its own: a conversation but no customer message, so routing waits.
        var reply = await app.Grains.GetGrain<ITicketGrain>(first.TicketNumber).ReplyAsync(new AgentReply { Actor = "agent", Text = "About the refund" });
        var split = (await app.Grains.GetGrain<ITicketGrain>(first.TicketNumber).SplitAsync(reply.Id, "agent")).Number;
        var interceptor = app.Services.GetRequiredService<RoutingReview2FixTests.InterceptingRoutingStore>();
        interceptor.AfterPut = (kind, id) =>
        {
            if (kind != RoutingKinds.TicketRouting || id != split.ToString(CultureInfo.InvariantCulture))
                return Task.CompletedTask;
            interceptor.AfterPut = null;
            throw new IOException("killed after the wait was stored");
        };
        var routing = app.Grains.GetGrain<ITicketRoutingGrain>(split);
        await Assert.ThrowsAsync<IOException>(() => routing.RouteAsync());
        var grainId = routing.GetGrainId().ToString();
        Assert.Equal(1, await app.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Reminders,
            r => r.GrainId == grainId && r.Name == TicketRoutingGrain.ReminderName)));

        // The wait ends: the tick routes the ticket on what it has and the reminder goes.
        clock.Advance(TicketRoutingGrain.FirstMessageWait + TimeSpan.FromSeconds(1));
        await routing.AsReference<IActivationProbe>().FireReminderAsync(TicketRoutingGrain.ReminderName);
        Assert.Equal((false, true), ((await routing.RouteAsync())!.Waiting, (await routing.RouteAsync())!.Applied));
        Assert.Equal(0, await app.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Reminders,
            r => r.GrainId == grainId && r.Name == TicketRoutingGrain.ReminderName)));
    }
}
