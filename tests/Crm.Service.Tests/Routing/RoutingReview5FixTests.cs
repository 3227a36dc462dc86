using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Grains.Sla;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

/// <summary>Fixes of the cold review of routing5 (RT2-RT9 in routing5-review.md), each with the test that failed before.</summary>
public sealed class RoutingReview5FixTests
{
    private static async Task<Guid> RecordAsync(HttpClient client, Guid customer, object body)
    {
        var response = await client.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", body);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(CrmApp.Json)).GetProperty("id").GetGuid();
    }

    private static async Task<ConsoleBrowser> SignInAsync(CrmApp app, string email)
    {
        var browser = ConsoleBrowser.Open(app);
        Assert.Equal(HttpStatusCode.Redirect, (await browser.SubmitAsync("/Account/Login", new() { ["Email"] = email, ["Password"] = ConsoleBrowser.Password })).StatusCode);
        return browser;
    }

    private static async Task<CustomerFollowUp> EntryAsync(CrmApp app, Guid id) => (await app.Grains.GetGrain<ICustomerFollowUpGrain>(id).GetAsync())!;

    private static async Task<List<Guid>> DueAsync(HttpClient client, string query) =>
        [.. (await client.GetFromJsonAsync<JsonElement>("/api/v1/follow-ups/due?" + query)).GetProperty("items").EnumerateArray().Select(e => e.GetProperty("id").GetGuid())];

    // RT2: an escalated entry has no reminder any more, so when the close stored with a later entry was cut short (crash
    // between storing B and closing A), nothing ever closed A: it stayed due and open although B's "closes" names it.
    // The lists now read an entry named in another's "closes" as done.
    [Fact]
    public async Task An_escalated_follow_up_whose_stored_close_was_cut_short_leaves_the_due_lists_and_shows_done()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?> { ["FollowUps:EscalateAfter"] = "01:00:00" }, clock,
            RoutingReview2FixTests.InterceptRoutingStore);
        await ConsoleBrowser.CreateUserAsync(app, "bob@example.com", ConsoleRoles.Agent);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rt2-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var first = await RecordAsync(alice, customer, new { how = "phone", nextDueAt = clock.GetUtcNow().AddHours(1), owner = "bob@example.com" });

        clock.Advance(TimeSpan.FromHours(3));
        var grain = app.Grains.GetGrain<ICustomerFollowUpGrain>(first);
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        Assert.NotNull((await EntryAsync(app, first)).EscalatedAt);

        // Alice's next contact closes her entry, but the close dies after the new entry is stored.
        var interceptor = app.Services.GetRequiredService<RoutingReview2FixTests.InterceptingRoutingStore>();
        interceptor.BeforePut = (_, id) => id == first.ToString("N") ? throw new IOException("killed before the close") : Task.CompletedTask;
        var second = await RecordAsync(alice, customer, new { how = "email", outcome = "Called back" });
        interceptor.BeforePut = null;
        // The stored copy is still open (the lists below must not rely on it; routing6 closes it when the grain reads it).
        var stored = await app.Services.GetRequiredService<Crm.Service.Grains.Sla.IRoutingStore>().GetAsync(CustomerFollowUpGrain.Kind, first.ToString("N"));
        Assert.Equal(JsonValueKind.Null, JsonDocument.Parse(stored!).RootElement.GetProperty("doneAt").ValueKind);
        Assert.Equal([first], (await EntryAsync(app, second)).Closes);

        Assert.DoesNotContain(first, await DueAsync(alice, "owner=bob@example.com"));
        Assert.DoesNotContain(first, await DueAsync(alice, ""));
        var log = (await alice.GetFromJsonAsync<JsonElement>($"/api/v1/customers/{customer}/follow-ups")).GetProperty("items").EnumerateArray()
            .Single(e => e.GetProperty("id").GetGuid() == first);
        Assert.Equal($"follow-up:{second:N}", log.GetProperty("doneBy").GetString());
        using var bob = await SignInAsync(app, "bob@example.com");
        Assert.DoesNotContain($"data-follow-up=\"{first}\"", await bob.PageAsync("/FollowUps"), StringComparison.Ordinal);
        Assert.Contains($"data-follow-up=\"{first}\" data-open=\"false\"", await bob.PageAsync($"/Customers/{customer}"), StringComparison.Ordinal);
    }

    // RT3: the customer page hid a restricted team's tickets but listed that team's follow-ups (call notes included).
    [Fact]
    public async Task The_customer_page_hides_a_restricted_teams_follow_ups_from_an_agent_outside_it()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await ConsoleBrowser.CreateUserAsync(app, "bob@example.com", ConsoleRoles.Agent);
        await ConsoleBrowser.CreateUserAsync(app, "carol@example.com", ConsoleRoles.Agent);
        await app.Services.GetRequiredService<Infrastructure.Teams.TeamDirectory>().SaveAsync("vip", "VIP", true, [await app.UserIdAsync("bob@example.com")], CancellationToken.None);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rt3-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var entry = await RecordAsync(alice, customer, new { how = "phone", outcome = "Secret VIP terms", nextDueAt = DateTimeOffset.UtcNow.AddDays(1), team = "vip" });

        using (var carol = await SignInAsync(app, "carol@example.com"))
        {
            var page = await carol.PageAsync($"/Customers/{customer}");
            Assert.DoesNotContain("Secret VIP terms", page, StringComparison.Ordinal);
            Assert.DoesNotContain($"data-follow-up=\"{entry}\"", page, StringComparison.Ordinal);
            var closed = await carol.SubmitAsync($"/Customers/{customer}", new() { ["followUp"] = entry.ToString() }, $"/Customers/{customer}?handler=FollowUpDone");
            Assert.Equal(HttpStatusCode.NotFound, closed.StatusCode);
            Assert.Null((await EntryAsync(app, entry)).DoneAt);
        }
        using var bob = await SignInAsync(app, "bob@example.com");
        Assert.Contains("Secret VIP terms", await bob.PageAsync($"/Customers/{customer}"), StringComparison.Ordinal);
    }

    // FX2: RT3 was fixed on the customer page only; a personal key of an agent outside "vip" still read the team's entries
    // (call notes included) through both API lists, and could close them.
    [Fact]
    public async Task A_personal_key_outside_a_restricted_team_neither_lists_nor_closes_its_follow_ups()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await ConsoleBrowser.CreateUserAsync(app, "bob@example.com", ConsoleRoles.Agent);
        using var carolBrowser = await ConsoleBrowser.SignedInAsync(app, "carol@example.com", ConsoleRoles.Agent);
        await app.Services.GetRequiredService<Infrastructure.Teams.TeamDirectory>().SaveAsync("vip", "VIP", true, [await app.UserIdAsync("bob@example.com")], CancellationToken.None);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("fx2-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var secret = await RecordAsync(alice, customer, new { how = "phone", outcome = "Secret VIP terms", nextDueAt = DateTimeOffset.UtcNow.AddMinutes(-1), team = "vip" });
        // Another author: a newer entry of alice's own would close her first one.
        using var erp = await app.AgentAsync("erp-sync");
        var open = await RecordAsync(erp, customer, new { how = "email", outcome = "Plain note", nextDueAt = DateTimeOffset.UtcNow.AddMinutes(-1), owner = "carol@example.com" });

        using var carol = await carolBrowser.PersonalKeyAsync(app);
        var log = await carol.GetStringAsync($"/api/v1/customers/{customer}/follow-ups");
        Assert.DoesNotContain("Secret VIP terms", log, StringComparison.Ordinal);
        Assert.Contains("Plain note", log, StringComparison.Ordinal);
        Assert.Equal([open], await DueAsync(carol, ""));
        Assert.Equal(HttpStatusCode.Forbidden, (await carol.GetAsync("/api/v1/follow-ups/due?team=VIP")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await carol.PostAsync($"/api/v1/follow-ups/{secret}/done", null)).StatusCode);
        Assert.Null((await EntryAsync(app, secret)).DoneAt);
        // The system key (no person) keeps the API's reach.
        Assert.Contains(secret, await DueAsync(alice, "team=vip"));
    }

    // RT4: recording a contact closed every open entry the caller could close by hand, a team-mate's too, silently.
    // The implicit close is again the caller's own entries only; the team rule is for closing by hand.
    [Fact]
    public async Task Recording_a_contact_leaves_a_team_mates_open_follow_up_open()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await ConsoleBrowser.CreateUserAsync(app, "bob@example.com", ConsoleRoles.Agent);
        using var carolBrowser = await ConsoleBrowser.SignedInAsync(app, "carol@example.com", ConsoleRoles.Agent);
        await app.Services.GetRequiredService<Infrastructure.Teams.TeamDirectory>().SaveAsync("sales", "Sales", false,
            [await app.UserIdAsync("bob@example.com"), await app.UserIdAsync("carol@example.com")], CancellationToken.None);
        using var carol = await carolBrowser.PersonalKeyAsync(app);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rt4-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var integration = await app.AgentAsync("crm-sync");
        var bobs = await RecordAsync(integration, customer, new { how = "phone", nextDueAt = DateTimeOffset.UtcNow.AddDays(7), owner = "bob@example.com" });
        using var other = await app.AgentAsync("erp-sync");
        var carols = await RecordAsync(other, customer, new { how = "phone", nextDueAt = DateTimeOffset.UtcNow.AddDays(7), owner = "carol@example.com" });

        await RecordAsync(carol, customer, new { how = "phone", outcome = "About another matter" });
        Assert.Null((await EntryAsync(app, bobs)).DoneAt);
        Assert.Equal("follow-up:", (await EntryAsync(app, carols)).DoneBy![..10]);
        // By hand, the team rule still holds.
        Assert.Equal(HttpStatusCode.OK, (await carol.PostAsync($"/api/v1/follow-ups/{bobs}/done", null)).StatusCode);
    }

    // RT5: "Mine" compared the owner with the sign-in name only; an entry recorded with the person's own key (owner
    // apikey:{email}/{label}) or owned by their account id never showed there.
    [Fact]
    public async Task Mine_lists_the_follow_ups_my_personal_key_recorded_and_those_owned_by_my_account_id()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var bobBrowser = await ConsoleBrowser.SignedInAsync(app, "bob@example.com", ConsoleRoles.Agent);
        using var bobKey = await bobBrowser.PersonalKeyAsync(app);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rt5-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        var due = DateTimeOffset.UtcNow.AddMinutes(-1);
        var own = await RecordAsync(bobKey, customer, new { how = "phone", nextDueAt = due });
        using var integration = await app.AgentAsync("crm-sync");
        var byId = await RecordAsync(integration, customer, new { how = "email", nextDueAt = due, owner = await app.UserIdAsync("bob@example.com") });

        var page = await bobBrowser.PageAsync("/FollowUps");
        Assert.Contains($"data-follow-up=\"{own}\"", page, StringComparison.Ordinal);
        Assert.Contains($"data-follow-up=\"{byId}\"", page, StringComparison.Ordinal);
        using var carol = await ConsoleBrowser.SignedInAsync(app, "carol@example.com", ConsoleRoles.Agent);
        Assert.DoesNotContain("data-follow-up=", await carol.PageAsync("/FollowUps"), StringComparison.Ordinal);
    }

    // RT6: the audit row was written after the close, keyed on a read from before it: two closes at once wrote two rows,
    // and a crash between the close and the audit left none, which a retry did not repair.
    [Fact]
    public async Task Closing_a_follow_up_twice_at_once_writes_one_audit_row_and_a_retry_writes_a_lost_one()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rt6-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var entry = await RecordAsync(alice, customer, new { how = "phone", nextDueAt = DateTimeOffset.UtcNow.AddDays(1) });
        Task<List<Crm.Service.Grains.Records.AuditRecord>> AuditAsync() => app.QueryAsync(db => db.Audit.AsNoTracking().Where(a => a.Action == "follow-up-done").ToListAsync());

        var both = await Task.WhenAll(alice.PostAsync($"/api/v1/follow-ups/{entry}/done", null), alice.PostAsync($"/api/v1/follow-ups/{entry}/done", null));
        Assert.All(both, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(entry.ToString(), Assert.Single(await AuditAsync()).NewValue);

        // The process died after the close and before the audit row: the retry writes it.
        await app.QueryAsync(db => db.Audit.Where(a => a.Action == "follow-up-done").ExecuteDeleteAsync());
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"/api/v1/follow-ups/{entry}/done", null)).StatusCode);
        Assert.Equal("apikey:alice", Assert.Single(await AuditAsync()).Actor);
    }

    // RT8: closes past 500 were dropped silently (those entries reminded later); now the contact is refused with a message.
    [Fact]
    public async Task A_contact_that_would_close_more_follow_ups_than_the_limit_is_refused_not_cut_short()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rt8-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var now = DateTimeOffset.UtcNow;
        await app.QueryAsync(db =>
        {
            for (var i = 0; i <= CustomerFollowUpGrain.MaxCloses; i++)
            {
                var id = Guid.NewGuid();
                db.RoutingDocuments.Add(new Infrastructure.Routing.RoutingDocumentRecord
                {
                    Kind = CustomerFollowUpGrain.Kind, Id = id.ToString("N"), UpdatedAt = now,
                    Json = RoutingJson.Write(new CustomerFollowUp
                    {
                        Id = id, CustomerId = customer, By = "apikey:alice", Owner = "apikey:alice", OwnerKey = "apikey:alice", At = now.AddMinutes(-i).ToUniversalTime(),
                        How = FollowUpChannel.Phone, NextDueAt = now.AddDays(1).ToUniversalTime(), RecordedAt = now,
                    }),
                });
            }
            return db.SaveChangesAsync();
        });

        var refused = await alice.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", new { how = "phone" });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains($"more than {CustomerFollowUpGrain.MaxCloses} open follow-ups", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(CustomerFollowUpGrain.MaxCloses + 1, (await app.Services.GetRequiredService<IRoutingStore>()
            .CustomerFollowUpsAsync(customer, true, null, null, 1000)).Count);
    }

    // RT9: the merged customer's page lists the follow-ups of the customer it went into, but Mark done there answered 404.
    [Fact]
    public async Task Mark_done_on_a_merged_customers_page_closes_the_follow_up_it_lists()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var carol = await ConsoleBrowser.SignedInAsync(app, "carol@example.com", ConsoleRoles.Agent);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var merged = (await scenario.ReceiveAsync(scenario.Message("rt9-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        var target = (await scenario.ReceiveAsync(scenario.Message("rt9-2", GrainScenario.NewPhone(), "Call me too"))).CustomerId;
        await app.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(merged, target, "agent");
        using var alice = await app.AgentAsync("alice");
        var entry = await RecordAsync(alice, target, new { how = "phone", nextDueAt = DateTimeOffset.UtcNow.AddDays(1), owner = "carol@example.com" });
        Assert.Contains($"data-follow-up=\"{entry}\" data-open=\"true\"", await carol.PageAsync($"/Customers/{merged}"), StringComparison.Ordinal);

        var closed = await carol.SubmitAsync($"/Customers/{merged}", new() { ["followUp"] = entry.ToString() }, $"/Customers/{merged}?handler=FollowUpDone");
        Assert.Equal(HttpStatusCode.Redirect, closed.StatusCode);
        Assert.Equal("user:carol@example.com", (await EntryAsync(app, entry)).DoneBy);
    }
}
