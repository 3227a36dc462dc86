using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

/// <summary>routing5: stored notices (RR4), the follow-up log in the console, routing admin pages (issue 20), and the
/// rest of routing4-review.md.</summary>
public sealed class RoutingReview5Tests
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

    /// <summary>The console's answer to a signed-in person without the right: a redirect to the access-denied page.</summary>
    private static void AssertDenied(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("/Account/AccessDenied", response.Headers.Location!.IsAbsoluteUri ? response.Headers.Location.PathAndQuery : response.Headers.Location.OriginalString, StringComparison.Ordinal);
    }

    private static Task<List<Infrastructure.Notifications.NoticeRecord>> NoticesAsync(CrmApp app) =>
        app.QueryAsync(db => db.Notices.AsNoTracking().OrderBy(n => n.Id).ToListAsync());

    // RR4: a notice was only a live push, so whoever was offline when the tick fired never saw it. Now it is stored per
    // person, once per cause, and listed on the Notices page with an unread count.
    [Fact]
    public async Task A_follow_up_notice_is_stored_once_and_an_agent_offline_when_it_fired_finds_it_on_the_notices_page()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock);
        await ConsoleBrowser.CreateUserAsync(app, "bob@example.com", ConsoleRoles.Agent);
        await ConsoleBrowser.CreateUserAsync(app, "carol@example.com", ConsoleRoles.Agent);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rr4-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var entry = await RecordAsync(alice, customer, new { how = "phone", nextDueAt = clock.GetUtcNow().AddHours(1), owner = "bob@example.com" });

        // Bob has no console open when it falls due; the tick repeats, and the notice is delivered again (a redelivery).
        clock.Advance(TimeSpan.FromHours(2));
        var grain = app.Grains.GetGrain<ICustomerFollowUpGrain>(entry);
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        var stored = Assert.Single(await NoticesAsync(app));
        await app.Services.GetRequiredService<IFollowUpNotifier>().NotifyAsync(
            new FollowUpNotice("customer-follow-up-due", null, customer, ["bob@example.com"], NotifySupervisors: false, Cause: stored.Cause));
        Assert.Single(await NoticesAsync(app));
        Assert.Equal(("customer-follow-up-due", customer), (stored.Kind, stored.CustomerId));

        // Carol sees none of it and cannot mark Bob's notice read.
        using (var carol = await SignInAsync(app, "carol@example.com"))
        {
            Assert.DoesNotContain("data-notice=", await carol.PageAsync("/Notices"), StringComparison.Ordinal);
            await carol.SubmitAsync("/Notices", [], $"/Notices?handler=Read&id={stored.Id}");
            Assert.Null(Assert.Single(await NoticesAsync(app)).ReadAt);
        }

        // Bob signs in later: the bell counts it, the page lists it with a link to the customer, and he marks it read.
        using var bob = await SignInAsync(app, "bob@example.com");
        var page = await bob.PageAsync("/Notices");
        Assert.Contains("data-notice=\"customer-follow-up-due\" data-unread=\"true\"", page, StringComparison.Ordinal);
        Assert.Contains($"/Customers/{customer}", page, StringComparison.Ordinal);
        Assert.Contains("id=\"notice-bell\" title=\"Notices\">🔔<span class=\"count\">1</span>", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await bob.SubmitAsync("/Notices", [], $"/Notices?handler=Read&id={stored.Id}")).StatusCode);
        page = await bob.PageAsync("/Notices");
        Assert.Contains("data-unread=\"false\"", page, StringComparison.Ordinal);
        Assert.Contains("<span class=\"count\">0</span>", page, StringComparison.Ordinal);
    }

    // RR4: the milestone was marked before the notice was sent and a failed send was only logged, so the notice was
    // lost for good. Now the notice is stored first and a failure fails the tick, which comes again.
    [Fact]
    public async Task A_notice_that_could_not_be_stored_is_stored_by_the_next_tick()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock, services: s => s.AddSingleton<IFollowUpNotifier>(sp =>
            new FailingOnceNotifier(ActivatorUtilities.CreateInstance<HubFollowUpNotifier>(sp))));
        await ConsoleBrowser.CreateUserAsync(app, "bob@example.com", ConsoleRoles.Agent);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rr4-2", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var entry = await RecordAsync(alice, customer, new { how = "phone", nextDueAt = clock.GetUtcNow().AddHours(1), owner = "bob@example.com" });

        clock.Advance(TimeSpan.FromHours(2));
        var grain = app.Grains.GetGrain<ICustomerFollowUpGrain>(entry);
        await Assert.ThrowsAnyAsync<Exception>(() => grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName));
        Assert.Null((await grain.GetAsync())!.RemindedAt);
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        Assert.NotNull((await grain.GetAsync())!.RemindedAt);
        Assert.Equal("customer-follow-up-due", Assert.Single(await NoticesAsync(app)).Kind);
    }

    private static async Task<string> UserIdAsync(CrmApp app, string email)
    {
        using var scope = app.Services.CreateScope();
        return (await scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Microsoft.AspNetCore.Identity.IdentityUser>>().FindByEmailAsync(email))!.Id;
    }

    // Issue 20 "Follow-up log": the due list per agent and per team in the console; a member of the owner's team may
    // close the follow-up (not only its owner), which is kept in the audit; the log shows in the customer's 360 view.
    [Fact]
    public async Task A_team_mate_closes_a_due_follow_up_from_the_team_list_with_audit_and_the_customer_page_shows_the_log()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        foreach (var email in new[] { "bob@example.com", "carol@example.com", "dave@example.com" })
            await ConsoleBrowser.CreateUserAsync(app, email, ConsoleRoles.Agent);
        await app.Services.GetRequiredService<Infrastructure.Teams.TeamDirectory>().SaveAsync("sales", "Sales", false,
            [await UserIdAsync(app, "bob@example.com"), await UserIdAsync(app, "carol@example.com")], CancellationToken.None);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("fl-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var entry = await RecordAsync(alice, customer, new { how = "phone", outcome = "Wants an offer", nextDueAt = DateTimeOffset.UtcNow.AddMinutes(-1), owner = "bob@example.com", team = "sales" });
        // Another of Bob's, with no team (another key records it, so the first stays open).
        using var erin = await app.AgentAsync("erin");
        var teamless = await RecordAsync(erin, customer, new { how = "email", nextDueAt = DateTimeOffset.UtcNow.AddMinutes(-1), owner = "bob@example.com" });

        using (var bob = await SignInAsync(app, "bob@example.com"))
            Assert.Contains($"data-follow-up=\"{entry}\"", await bob.PageAsync("/FollowUps"), StringComparison.Ordinal);
        using var carol = await SignInAsync(app, "carol@example.com");
        Assert.DoesNotContain($"data-follow-up=\"{entry}\"", await carol.PageAsync("/FollowUps"), StringComparison.Ordinal);
        Assert.Contains($"data-follow-up=\"{entry}\"", await carol.PageAsync("/FollowUps?team=sales"), StringComparison.Ordinal);

        // Dave is in no team of Bob's: not his list, not his to close.
        using (var dave = await SignInAsync(app, "dave@example.com"))
        {
            AssertDenied(await dave.GetAsync("/FollowUps?team=sales"));
            AssertDenied(await dave.SubmitAsync("/FollowUps", [], $"/FollowUps?handler=Done&id={entry}"));
            AssertDenied(await dave.SubmitAsync($"/Customers/{customer}", new() { ["followUp"] = teamless.ToString() }, $"/Customers/{customer}?handler=FollowUpDone"));
            Assert.Null((await app.Grains.GetGrain<ICustomerFollowUpGrain>(entry).GetAsync())!.DoneAt);
        }

        Assert.Equal(HttpStatusCode.Redirect, (await carol.SubmitAsync("/FollowUps?team=sales", [], $"/FollowUps?handler=Done&id={entry}&team=sales")).StatusCode);
        var done = (await app.Grains.GetGrain<ICustomerFollowUpGrain>(entry).GetAsync())!;
        Assert.NotNull(done.DoneAt);
        Assert.Equal("user:carol@example.com", done.DoneBy);
        var audit = await app.QueryAsync(db => db.Audit.AsNoTracking().Where(a => a.Action == "follow-up-done").ToListAsync());
        Assert.Equal(("user:carol@example.com", entry.ToString()), (Assert.Single(audit).Actor, audit[0].NewValue));
        Assert.DoesNotContain($"data-follow-up=\"{entry}\"", await carol.PageAsync("/FollowUps?team=sales"), StringComparison.Ordinal);

        var page = await carol.PageAsync($"/Customers/{customer}");
        Assert.Contains($"data-follow-up=\"{entry}\" data-open=\"false\"", page, StringComparison.Ordinal);
        Assert.Contains($"data-follow-up=\"{teamless}\" data-open=\"true\"", page, StringComparison.Ordinal);
        Assert.Contains("Wants an offer", page, StringComparison.Ordinal);

        // The teamless one is Bob's, and Carol shares a team with him: she may close it from the customer page.
        Assert.Equal(HttpStatusCode.Redirect, (await carol.SubmitAsync($"/Customers/{customer}", new() { ["followUp"] = teamless.ToString() },
            $"/Customers/{customer}?handler=FollowUpDone")).StatusCode);
        Assert.Equal("user:carol@example.com", (await app.Grains.GetGrain<ICustomerFollowUpGrain>(teamless).GetAsync())!.DoneBy);
    }

    // RR5: the earlier entries were closed one by one in the HTTP request after the new entry was stored; a crash in
    // between left them open, and they reminded (then escalated) about a contact that did happen. The closes are now
    // stored with the new entry, and an earlier entry's tick that finds itself named there closes itself instead.
    [Fact]
    public async Task An_earlier_follow_up_whose_close_was_cut_short_does_not_remind()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var notices = new FollowUpTests.RecordingFollowUpNotifier();
        await using var app = new CrmApp(data.Path, clock: clock, services: s =>
        {
            RoutingReview2FixTests.InterceptRoutingStore(s);
            s.AddSingleton<IFollowUpNotifier>(notices);
        });
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rr5-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var first = await RecordAsync(alice, customer, new { how = "phone", nextDueAt = clock.GetUtcNow().AddHours(1) });

        // The process dies after the new entry is stored, before the first is closed. The contact is stored, so the
        // request answers 201 (routing5 RT7: a failed close no longer fails it, inviting a duplicate retry).
        var interceptor = app.Services.GetRequiredService<RoutingReview2FixTests.InterceptingRoutingStore>();
        interceptor.BeforePut = (_, id) => id == first.ToString("N") ? throw new IOException("killed before the close") : Task.CompletedTask;
        var response = await alice.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", new { how = "email", outcome = "Called back" });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        interceptor.BeforePut = null;
        var stored = await app.Services.GetRequiredService<Crm.Service.Grains.Sla.IRoutingStore>().GetAsync(CustomerFollowUpGrain.Kind, first.ToString("N"));
        Assert.Equal(JsonValueKind.Null, JsonDocument.Parse(stored!).RootElement.GetProperty("doneAt").ValueKind);

        clock.Advance(TimeSpan.FromHours(2));
        var grain = app.Grains.GetGrain<ICustomerFollowUpGrain>(first);
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        Assert.Empty(notices.Notices);
        var closed = (await grain.GetAsync())!;
        Assert.NotNull(closed.DoneAt);
        Assert.StartsWith("follow-up:", closed.DoneBy, StringComparison.Ordinal);
    }

    // RR9: the due list's owner filter compared SQLite's lower() (ASCII only) with .NET's; RR10: a misspelt team was
    // stored as typed and its notices went to the admins.
    [Fact]
    public async Task The_due_list_finds_non_ascii_owners_ignoring_case_and_a_follow_ups_team_must_exist()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await app.Services.GetRequiredService<Infrastructure.Teams.TeamDirectory>().SaveAsync("sales", "Sales", false, [], CancellationToken.None);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rr9-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var due = DateTimeOffset.UtcNow.AddMinutes(-1);

        var entry = await RecordAsync(alice, customer, new { how = "phone", nextDueAt = due, owner = "Ärger@example.com", team = "SALES" });
        var list = await alice.GetFromJsonAsync<JsonElement>("/api/v1/follow-ups/due?owner=" + Uri.EscapeDataString("ärger@example.com"));
        Assert.Equal(entry, Assert.Single(list.GetProperty("items").EnumerateArray()).GetProperty("id").GetGuid());
        Assert.Equal("sales", (await app.Grains.GetGrain<ICustomerFollowUpGrain>(entry).GetAsync())!.Team);
        Assert.Single((await alice.GetFromJsonAsync<JsonElement>("/api/v1/follow-ups/due?team=Sales")).GetProperty("items").EnumerateArray());

        var misspelt = await alice.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", new { how = "phone", nextDueAt = due, team = "slaes" });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, misspelt.StatusCode);
    }

    private static Task<HttpResponseMessage> SaveSettingAsync(ConsoleBrowser admin, string page, string id, string json) =>
        admin.SubmitAsync(page, new() { ["EditId"] = id, ["EditJson"] = json }, page + "?handler=Save");

    // Issue 20: "where the console has landed, the settings get admin pages". Each page saves through the admin API's
    // own checks (a refusal is shown with a 422), lists, edits and deletes.
    [Fact]
    public async Task The_routing_rules_page_creates_edits_refuses_a_misspelt_team_and_deletes()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await app.Services.GetRequiredService<Infrastructure.Teams.TeamDirectory>().SaveAsync("billing", "Billing", false, [], CancellationToken.None);
        using var admin = await ConsoleBrowser.SignedInAsync(app, "admin@example.com", ConsoleRoles.Admin);
        const string Page = "/Admin/Routing/Rules";
        Assert.Contains("Refunds to billing", await admin.PageAsync(Page), StringComparison.Ordinal); // the example to start from

        var refused = await SaveSettingAsync(admin, Page, "refunds", """{ "name": "Refunds", "conditions": { "keywords": ["refund"] }, "team": "biling" }""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains("No team &#x27;biling&#x27;", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await SaveSettingAsync(admin, Page, "refunds", "{ not json")).StatusCode);
        Assert.Empty(await app.Services.GetRequiredService<Crm.Service.Grains.Sla.IRoutingStore>().ListAsync(Crm.Service.Grains.Sla.RoutingKinds.RoutingRule));

        Assert.Equal(HttpStatusCode.Redirect, (await SaveSettingAsync(admin, Page, "refunds",
            """{ "name": "Refunds", "order": 5, "conditions": { "keywords": ["refund"] }, "team": "billing", "priority": "high" }""")).StatusCode);
        using var api = app.Admin();
        var rule = await api.GetFromJsonAsync<JsonElement>("/api/v1/admin/routing-rules/refunds");
        Assert.Equal(("billing", "high"), (rule.GetProperty("team").GetString(), rule.GetProperty("priority").GetString()));
        Assert.Contains("data-id=\"refunds\"", await admin.PageAsync(Page), StringComparison.Ordinal);
        Assert.Contains("&quot;priority&quot;: &quot;high&quot;", await admin.PageAsync(Page + "?edit=refunds"), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostWithoutTokenAsync(Page + "?handler=Delete&id=refunds", [])).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, [], Page + "?handler=Delete&id=refunds")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync("/api/v1/admin/routing-rules/refunds")).StatusCode);
    }

    [Fact]
    public async Task The_sla_policies_page_saves_a_policy_and_refuses_an_unknown_calendar()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var admin = await ConsoleBrowser.SignedInAsync(app, "admin@example.com", ConsoleRoles.Admin);
        const string Page = "/Admin/Routing/SlaPolicies";
        await admin.PageAsync(Page);

        var refused = await SaveSettingAsync(admin, Page, "standard", """{ "name": "Standard", "calendarId": "nope", "targets": [ { "priority": "normal", "resolution": "08:00:00" } ] }""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains("nope", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.Redirect, (await SaveSettingAsync(admin, Page, "standard",
            """{ "name": "Standard", "targets": [ { "priority": "normal", "resolution": "08:00:00" } ], "warningAt": 0.5 }""")).StatusCode);
        using var api = app.Admin();
        Assert.Equal(0.5, (await api.GetFromJsonAsync<JsonElement>("/api/v1/admin/sla-policies/standard")).GetProperty("warningAt").GetDouble());
        Assert.Contains("data-id=\"standard\"", await admin.PageAsync(Page), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, [], Page + "?handler=Delete&id=standard")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync("/api/v1/admin/sla-policies/standard")).StatusCode);
    }

    [Fact]
    public async Task The_calendars_page_saves_hours_and_holidays_and_refuses_an_unknown_time_zone()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var admin = await ConsoleBrowser.SignedInAsync(app, "admin@example.com", ConsoleRoles.Admin);
        const string Page = "/Admin/Routing/Calendars";
        await admin.PageAsync(Page);

        var refused = await SaveSettingAsync(admin, Page, "office", """{ "name": "Office", "timeZone": "Mars/Olympus_Mons" }""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains("Mars/Olympus_Mons", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.Redirect, (await SaveSettingAsync(admin, Page, "office", """
            { "name": "Office", "timeZone": "Europe/Berlin", "hours": [ { "day": "monday", "open": "09:00:00", "close": "17:00:00" } ], "holidays": ["2026-12-25"] }
            """)).StatusCode);
        using var api = app.Admin();
        var calendar = await api.GetFromJsonAsync<JsonElement>("/api/v1/admin/calendars/office");
        Assert.Equal(("Europe/Berlin", "2026-12-25"), (calendar.GetProperty("timeZone").GetString(), calendar.GetProperty("holidays")[0].GetString()));
        Assert.Contains("2026-12-25", await admin.PageAsync(Page + "?edit=office"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, [], Page + "?handler=Delete&id=office")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync("/api/v1/admin/calendars/office")).StatusCode);
    }

    [Fact]
    public async Task An_agent_may_not_open_or_post_to_the_routing_admin_pages()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var agent = await ConsoleBrowser.SignedInAsync(app, "agent@example.com", ConsoleRoles.Agent);
        foreach (var page in new[] { "/Admin/Routing/Rules", "/Admin/Routing/SlaPolicies", "/Admin/Routing/Calendars" })
        {
            AssertDenied(await agent.GetAsync(page));
            // A form token from a page the agent may open: the post is refused for the role, not the token.
            AssertDenied(await agent.SubmitAsync("/Notices", new() { ["EditId"] = "x", ["EditJson"] = "{}" }, page + "?handler=Save"));
        }
        Assert.Empty(await app.Services.GetRequiredService<Crm.Service.Grains.Sla.IRoutingStore>().ListAsync(Crm.Service.Grains.Sla.RoutingKinds.Calendar));
    }

    private sealed class FailingOnceNotifier(IFollowUpNotifier inner) : IFollowUpNotifier
    {
        private int _calls;

        public Task NotifyAsync(FollowUpNotice notice, CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref _calls) == 1 ? throw new IOException("the store is away") : inner.NotifyAsync(notice, cancellationToken);
    }
}
