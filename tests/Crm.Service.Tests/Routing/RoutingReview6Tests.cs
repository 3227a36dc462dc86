using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Notifications;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

/// <summary>routing6: the routing admin pages as form fields (teams' assignment, rules, SLA policies, calendars), read
/// notices pruned, and the rest of the routing4/routing5 reviews (RT2, RR11).</summary>
public sealed class RoutingReview6Tests
{
    /// <summary>The message shown at a form field (the validation span Razor renders for its key), HTML-decoded.</summary>
    private static string? FieldError(string html, string key)
    {
        var match = Regex.Match(html, "data-valmsg-for=\"" + Regex.Escape(key) + "\"[^>]*>([^<]*)<");
        return match.Success && match.Groups[1].Value.Length > 0 ? WebUtility.HtmlDecode(match.Groups[1].Value) : null;
    }

    private static async Task<string> RefusedAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    [Fact]
    public async Task The_routing_rule_form_saves_fields_through_the_api_checks_and_shows_each_refusal_at_its_field()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await app.Services.GetRequiredService<TeamDirectory>().SaveAsync("billing", "Billing", false, [], CancellationToken.None);
        using var admin = await ConsoleBrowser.SignedInAsync(app, "admin@example.com", ConsoleRoles.Admin);
        const string Page = "/Admin/Routing/Rules";
        Dictionary<string, string> Fields(string team, string? from = null) => new()
        {
            ["Rule.Id"] = "refunds", ["Rule.Name"] = "Refunds", ["Rule.Order"] = "5", ["Rule.Enabled"] = "true",
            ["Rule.Conditions.Keywords"] = "refund, money back", ["Rule.Conditions.Channels"] = "Email",
            ["Rule.Conditions.From"] = from ?? "", ["Rule.Team"] = team, ["Rule.Priority"] = "High", ["Rule.AddTags"] = "refund",
        };

        var html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("biling"), Page + "?handler=Fields"));
        Assert.StartsWith("No team 'biling'", FieldError(html, "Rule.Team"), StringComparison.Ordinal);
        Assert.Contains("value=\"refund, money back\"", html, StringComparison.Ordinal); // the form as typed
        html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("billing", from: "18:00"), Page + "?handler=Fields"));
        Assert.Contains("needs both from and to", FieldError(html, "Rule.Conditions.From"), StringComparison.Ordinal);
        html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("billing", from: "late"), Page + "?handler=Fields"));
        Assert.NotNull(FieldError(html, "Rule.Conditions.From")); // not a time: the binder's message, at the field
        var store = app.Services.GetRequiredService<IRoutingStore>();
        Assert.Empty(await store.ListAsync(RoutingKinds.RoutingRule));

        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, Fields("billing"), Page + "?handler=Fields")).StatusCode);
        var rule = RoutingJson.Read<RoutingRule>((await store.GetAsync(RoutingKinds.RoutingRule, "refunds"))!);
        Assert.Equal(("billing", TicketPriority.High, 5), (rule.Team, rule.Priority, rule.Order));
        Assert.Equal(["refund", "money back"], rule.Conditions.Keywords);
        Assert.Equal([ChannelKind.Email], rule.Conditions.Channels);
        Assert.Equal(["refund"], rule.AddTags);
        // Editing starts from the stored rule.
        var edit = await admin.PageAsync(Page + "?edit=refunds");
        Assert.Contains("value=\"refund, money back\"", edit, StringComparison.Ordinal);
        Assert.Matches("<option (selected=\"selected\" value=\"High\"|value=\"High\" selected=\"selected\")>", edit);
    }

    [Fact]
    public async Task The_sla_policy_form_saves_targets_and_escalations_and_shows_refusals_at_their_fields()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await app.Services.GetRequiredService<TeamDirectory>().SaveAsync("escalation", "Escalation", false, [], CancellationToken.None);
        using var admin = await ConsoleBrowser.SignedInAsync(app, "admin@example.com", ConsoleRoles.Admin);
        const string Page = "/Admin/Routing/SlaPolicies";
        Dictionary<string, string> Fields(string firstResponse, string reassign, string calendar = "") => new()
        {
            ["Policy.Id"] = "standard", ["Policy.Name"] = "Standard", ["Policy.CalendarId"] = calendar, ["Policy.WarningAt"] = "0.75",
            ["Policy.Targets[0].Priority"] = "Low", ["Policy.Targets[1].Priority"] = "Normal",
            ["Policy.Targets[1].FirstResponse"] = firstResponse, ["Policy.Targets[1].Resolution"] = "2.00:00:00",
            ["Policy.Escalations[0].Use"] = "true", ["Policy.Escalations[0].After"] = "00:00", ["Policy.Escalations[0].NotifySupervisors"] = "true",
            ["Policy.Escalations[1].Use"] = "true", ["Policy.Escalations[1].After"] = "01:00", ["Policy.Escalations[1].ReassignToTeam"] = reassign,
            ["Policy.Escalations[1].RaisePriorityTo"] = "Urgent",
        };

        var html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("04:00", "nope"), Page + "?handler=Fields"));
        Assert.Contains("No team 'nope'", FieldError(html, "Policy.Escalations"), StringComparison.Ordinal);
        html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("soon", "escalation"), Page + "?handler=Fields"));
        Assert.NotNull(FieldError(html, "Policy.Targets[1].FirstResponse"));
        html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("-01:00", "escalation"), Page + "?handler=Fields"));
        Assert.Contains("positive time span", FieldError(html, "Policy.Targets"), StringComparison.Ordinal);
        html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("04:00", "escalation", calendar: "berlin"), Page + "?handler=Fields"));
        Assert.Contains("No calendar 'berlin'", FieldError(html, "Policy.CalendarId"), StringComparison.Ordinal);
        var store = app.Services.GetRequiredService<IRoutingStore>();
        Assert.Empty(await store.ListAsync(RoutingKinds.SlaPolicy));

        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, Fields("04:00", "escalation"), Page + "?handler=Fields")).StatusCode);
        var policy = RoutingJson.Read<SlaPolicy>((await store.GetAsync(RoutingKinds.SlaPolicy, "standard"))!);
        Assert.Equal(new SlaTarget(TicketPriority.Normal, TimeSpan.FromHours(4), null, TimeSpan.FromDays(2)), Assert.Single(policy.Targets));
        Assert.Equal(0.75, policy.WarningAt);
        Assert.Equal(2, policy.Escalations.Count);
        Assert.Equal(("escalation", TicketPriority.Urgent, TimeSpan.FromHours(1)),
            (policy.Escalations[1].ReassignToTeam, policy.Escalations[1].RaisePriorityTo, policy.Escalations[1].After));
        Assert.Contains("value=\"escalation\"", await admin.PageAsync(Page + "?edit=standard"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_calendar_form_saves_weekly_hours_and_holidays_and_refuses_a_bad_range_or_zone_at_its_field()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var admin = await ConsoleBrowser.SignedInAsync(app, "admin@example.com", ConsoleRoles.Admin);
        const string Page = "/Admin/Routing/Calendars";
        Dictionary<string, string> Fields(string zone, string tuesday) => new()
        {
            ["Calendar.Id"] = "shanghai", ["Calendar.Name"] = "Shanghai office", ["Calendar.TimeZone"] = zone,
            ["Calendar.Hours[0]"] = "09:00-12:00, 13:00-18:00", ["Calendar.Hours[1]"] = tuesday, ["Calendar.Hours[2]"] = "",
            ["Calendar.Hours[3]"] = "", ["Calendar.Hours[4]"] = "", ["Calendar.Hours[5]"] = "", ["Calendar.Hours[6]"] = "",
            ["Calendar.Holidays"] = "2026-10-01\n2026-10-02",
        };

        var html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("Asia/Shanghai", "mornings"), Page + "?handler=Fields"));
        Assert.Contains("'mornings' is not a range of hours", FieldError(html, "Calendar.Hours[1]"), StringComparison.Ordinal);
        html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("Asia/Shanghai", "18:00-09:00"), Page + "?handler=Fields"));
        Assert.Contains("must open before they close", FieldError(html, "Calendar.Hours"), StringComparison.Ordinal);
        html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("Mars/Olympus_Mons", "09:00-17:00"), Page + "?handler=Fields"));
        Assert.Contains("not a known time zone", FieldError(html, "Calendar.TimeZone"), StringComparison.Ordinal);
        var store = app.Services.GetRequiredService<IRoutingStore>();
        Assert.Empty(await store.ListAsync(RoutingKinds.Calendar));

        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, Fields("Asia/Shanghai", "09:00-24:00"), Page + "?handler=Fields")).StatusCode);
        var calendar = RoutingJson.Read<BusinessCalendarDefinition>((await store.GetAsync(RoutingKinds.Calendar, "shanghai"))!);
        Assert.Equal("Asia/Shanghai", calendar.TimeZone);
        Assert.Equal(3, calendar.Hours.Count);
        Assert.Contains(new BusinessHoursRange(DayOfWeek.Tuesday, TimeSpan.FromHours(9), TimeSpan.FromHours(24)), calendar.Hours);
        Assert.Equal([new DateOnly(2026, 10, 1), new DateOnly(2026, 10, 2)], calendar.Holidays);
        Assert.Contains("value=\"09:00-12:00, 13:00-18:00\"", await admin.PageAsync(Page + "?edit=shanghai"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_team_assignment_form_sets_strategy_skills_and_capacity_through_the_api_and_refuses_a_bad_capacity()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await ConsoleBrowser.CreateUserAsync(app, "bob@example.com", ConsoleRoles.Agent);
        var bob = await app.UserIdAsync("bob@example.com");
        await app.Services.GetRequiredService<TeamDirectory>().SaveAsync("sales", "Sales", false, [bob], CancellationToken.None);
        using var admin = await ConsoleBrowser.SignedInAsync(app, "admin@example.com", ConsoleRoles.Admin);
        const string Page = "/Admin/Routing/Assignment?team=sales";
        Assert.Contains("data-agent=\"bob@example.com\"", await admin.PageAsync(Page), StringComparison.Ordinal);
        Dictionary<string, string> Fields(string max, string chats = "2") => new()
        {
            ["Form.Policy"] = "RoundRobin", ["Form.ReturnTicketsAfterOffline"] = "00:30",
            ["Form.Agents[0].Email"] = "bob@example.com", ["Form.Agents[0].Takes"] = "true", ["Form.Agents[0].Skills"] = "zh, billing",
            ["Form.Agents[0].MaxOpenTickets"] = max, ["Form.Agents[0].MaxConcurrentChats"] = chats,
        };

        var html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("0")));
        Assert.Contains("maxOpenTickets is 1-10000", FieldError(html, "Form.Agents"), StringComparison.Ordinal);
        html = await RefusedAsync(await admin.SubmitAsync(Page, Fields("7", chats: "-1")));
        Assert.Contains("maxConcurrentChats is 0-1000", FieldError(html, "Form.Agents"), StringComparison.Ordinal);
        Assert.Null(await app.Services.GetRequiredService<IRoutingStore>().GetAsync(RoutingKinds.TeamAssignment, "sales"));

        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, Fields("7"))).StatusCode);
        using var api = app.Admin();
        var settings = (await api.GetFromJsonAsync<JsonElement>("/api/v1/admin/teams/sales/assignment")).GetProperty("settings");
        Assert.Equal("roundRobin", settings.GetProperty("policy").GetString());
        var agent = Assert.Single(settings.GetProperty("agents").EnumerateArray());
        Assert.Equal(("bob@example.com", 7, "zh,billing"), (agent.GetProperty("userId").GetString(), agent.GetProperty("maxOpenTickets").GetInt32(),
            string.Join(",", agent.GetProperty("skills").EnumerateArray().Select(s => s.GetString()))));
        Assert.Equal(2, agent.GetProperty("maxConcurrentChats").GetInt32());
        // The queue took the settings too (the API's path, not a copy of it).
        Assert.Equal(AssignmentPolicy.RoundRobin, (await app.Grains.GetGrain<ITeamQueueGrain>("sales").GetAsync()).Policy);
        var form = await admin.PageAsync(Page);
        Assert.Contains("value=\"zh, billing\"", form, StringComparison.Ordinal);
        Assert.Matches("name=\"Form.Agents\\[0\\].MaxConcurrentChats\"[^>]*value=\"2\"", form);
    }

    // Review CR9: unticking "Takes work" threw away the member's skills and capacity, rows went by email (a member whose
    // email changed after the page was loaded was refused), and a member missing from a stale form lost their settings.
    [Fact]
    public async Task The_team_assignment_form_keeps_an_unticked_members_skills_saves_rows_by_account_and_keeps_a_member_missing_from_the_form()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await ConsoleBrowser.CreateUserAsync(app, "bob@example.com", ConsoleRoles.Agent);
        await ConsoleBrowser.CreateUserAsync(app, "dave@example.com", ConsoleRoles.Agent);
        await ConsoleBrowser.CreateUserAsync(app, "carol@example.com", ConsoleRoles.Agent);
        var noMail = await app.UserIdAsync("carol@example.com");
        var bob = await app.UserIdAsync("bob@example.com");
        var dave = await app.UserIdAsync("dave@example.com");
        await app.Services.GetRequiredService<TeamDirectory>().SaveAsync("sales", "Sales", false, [bob, noMail], CancellationToken.None);
        using var admin = await ConsoleBrowser.SignedInAsync(app, "admin@example.com", ConsoleRoles.Admin);
        const string Page = "/Admin/Routing/Assignment?team=sales";
        Assert.Contains($"data-account=\"{noMail}\"", await admin.PageAsync(Page), StringComparison.Ordinal);
        Dictionary<string, string> Fields(bool bobTakes) => new()
        {
            ["Form.Policy"] = "RoundRobin",
            ["Form.Agents[0].AccountId"] = bob, ["Form.Agents[0].Email"] = "bob@example.com", ["Form.Agents[0].Takes"] = bobTakes ? "true" : "false",
            ["Form.Agents[0].Skills"] = "zh, billing", ["Form.Agents[0].MaxOpenTickets"] = "7",
            ["Form.Agents[1].AccountId"] = noMail, ["Form.Agents[1].Email"] = "carol.old@example.com", ["Form.Agents[1].Takes"] = "true",
            ["Form.Agents[1].Skills"] = "de", ["Form.Agents[1].MaxOpenTickets"] = "3",
        };
        using var api = app.Admin();
        async Task<JsonElement> SettingsAsync() => (await api.GetFromJsonAsync<JsonElement>("/api/v1/admin/teams/sales/assignment")).GetProperty("settings");
        static string[] Names(JsonElement list) => [.. list.EnumerateArray().Select(a => a.GetProperty("userId").GetString()!).Order(StringComparer.Ordinal)];

        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, Fields(bobTakes: true))).StatusCode);
        Assert.Equal(["bob@example.com", "carol@example.com"], Names((await SettingsAsync()).GetProperty("agents")));
        // (carol's row carried an email she no longer has, as a form loaded before she changed it: the account counts.)

        // Untick bob and save, as the page posts it: he takes no work, and his skills and capacity stay.
        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, Fields(bobTakes: false))).StatusCode);
        var settings = await SettingsAsync();
        Assert.Equal(["carol@example.com"], Names(settings.GetProperty("agents")));
        var kept = Assert.Single(settings.GetProperty("notTakingWork").EnumerateArray());
        Assert.Equal(("bob@example.com", 7), (kept.GetProperty("userId").GetString(), kept.GetProperty("maxOpenTickets").GetInt32()));
        var html = await admin.PageAsync(Page);
        Assert.Contains("value=\"zh, billing\"", html, StringComparison.Ordinal);
        // Re-tick: the skills are unchanged.
        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, Fields(bobTakes: true))).StatusCode);
        var back = (await SettingsAsync()).GetProperty("agents").EnumerateArray().Single(a => a.GetProperty("userId").GetString() == "bob@example.com");
        Assert.Equal("zh,billing", string.Join(",", back.GetProperty("skills").EnumerateArray().Select(x => x.GetString())));

        // Dave joins and is given work through the API; a form loaded before he joined (no row for him) keeps him.
        await app.Services.GetRequiredService<TeamDirectory>().SaveAsync("sales", "Sales", false, [bob, noMail, dave], CancellationToken.None);
        (await api.PutAsJsonAsync("/api/v1/admin/teams/sales/assignment", new
        {
            policy = "roundRobin",
            agents = new object[]
            {
                new { email = "bob@example.com", skills = new[] { "zh", "billing" }, maxOpenTickets = 7 },
                new { accountId = noMail, skills = new[] { "de" }, maxOpenTickets = 3 },
                new { email = "dave@example.com", skills = new[] { "fr" }, maxOpenTickets = 4, maxConcurrentChats = 2 },
            },
        }, CrmApp.Json)).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(Page, Fields(bobTakes: true))).StatusCode);
        var daveKept = (await SettingsAsync()).GetProperty("agents").EnumerateArray().Single(a => a.GetProperty("userId").GetString() == "dave@example.com");
        Assert.Equal((4, 2), (daveKept.GetProperty("maxOpenTickets").GetInt32(), daveKept.GetProperty("maxConcurrentChats").GetInt32()));
    }

    [Fact]
    public async Task An_agent_or_supervisor_may_not_open_or_post_the_routing_form_pages()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await app.Services.GetRequiredService<TeamDirectory>().SaveAsync("sales", "Sales", false, [], CancellationToken.None);
        foreach (var role in new[] { ConsoleRoles.Agent, ConsoleRoles.Supervisor })
        {
            using var person = await ConsoleBrowser.SignedInAsync(app, role.ToLowerInvariant() + "@example.com", role);
            foreach (var (page, field) in new[] { ("/Admin/Routing/Rules?handler=Fields", "Rule.Id"), ("/Admin/Routing/SlaPolicies?handler=Fields", "Policy.Id"),
                ("/Admin/Routing/Calendars?handler=Fields", "Calendar.Id"), ("/Admin/Routing/Assignment?team=sales", "Form.Policy") })
            {
                var denied = await person.GetAsync(page);
                Assert.Equal(HttpStatusCode.Redirect, denied.StatusCode);
                Assert.Contains("/Account/AccessDenied", denied.Headers.Location!.OriginalString, StringComparison.Ordinal);
                var posted = await person.SubmitAsync("/Notices", new() { [field] = "x" }, page);
                Assert.Contains("/Account/AccessDenied", posted.Headers.Location!.OriginalString, StringComparison.Ordinal);
            }
            Assert.Equal(HttpStatusCode.Forbidden, (await person.GetAsync("/Account/AccessDenied")).StatusCode);
        }
        var store = app.Services.GetRequiredService<IRoutingStore>();
        Assert.Empty(await store.ListAsync(RoutingKinds.RoutingRule));
        Assert.Null(await store.GetAsync(RoutingKinds.TeamAssignment, "sales"));
    }

    // Stored notices were kept for ever. Read ones older than Notices:KeepReadFor are pruned; unread ones stay.
    [Fact]
    public async Task Pruning_deletes_notices_read_long_ago_and_keeps_unread_and_recently_read_ones()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?> { ["Notices:KeepReadFor"] = "30.00:00:00", ["Notices:PruneInterval"] = "01:00:00" },
            clock: clock);
        var notices = app.Services.GetRequiredService<NoticeStore>();
        foreach (var cause in new[] { "old-read", "unread", "recently-read" })
            await notices.StoreAsync(["u1"], cause, "sla-breach-resolution", 1, null, "sla");
        await notices.StoreAsync(["u2"], "other-unread", "sla-breach-resolution", 1, null, "sla");
        var ids = (await app.QueryAsync(db => db.Notices.AsNoTracking().ToListAsync())).ToDictionary(n => n.Cause, n => n.Id);
        await notices.MarkReadAsync("u1", ids["old-read"]);

        clock.Advance(TimeSpan.FromDays(20));
        await notices.MarkReadAsync("u1", ids["recently-read"]);
        clock.Advance(TimeSpan.FromDays(11));
        // The pruner waits on the injected clock: each probe moves it by one pass.
        var left = await Eventually.WaitForAsync(async () =>
        {
            clock.Advance(TimeSpan.FromHours(1));
            return await app.QueryAsync(db => db.Notices.AsNoTracking().Select(n => n.Cause).ToListAsync());
        }, causes => !causes.Contains("old-read"), what: "the notice read 31 days ago to be pruned");
        Assert.Equal(["other-unread", "recently-read", "unread"], left.Order(StringComparer.Ordinal));
    }

    // routing5 RT2: an entry named in a later entry's closes (the close cut short by a crash) stayed open in its own
    // stored copy until its next tick, and an escalated entry has none. It is closed when it is read.
    [Fact]
    public async Task An_escalated_follow_up_whose_close_was_cut_short_is_closed_in_its_own_stored_copy_when_read()
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
        var customer = (await scenario.ReceiveAsync(scenario.Message("rt2-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var created = await alice.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", new { how = "phone", nextDueAt = clock.GetUtcNow().AddHours(1) });
        var first = (await created.Content.ReadFromJsonAsync<JsonElement>(CrmApp.Json)).GetProperty("id").GetGuid();
        var grain = app.Grains.GetGrain<ICustomerFollowUpGrain>(first);
        clock.Advance(TimeSpan.FromDays(3));
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        Assert.NotNull((await grain.GetAsync())!.EscalatedAt);

        var interceptor = app.Services.GetRequiredService<RoutingReview2FixTests.InterceptingRoutingStore>();
        interceptor.BeforePut = (_, id) => id == first.ToString("N") ? throw new IOException("killed before the close") : Task.CompletedTask;
        var second = await alice.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", new { how = "email", outcome = "Called back" });
        Assert.Equal(HttpStatusCode.Created, second.StatusCode);
        var closerBody = await second.Content.ReadFromJsonAsync<JsonElement>(CrmApp.Json);
        var closer = closerBody.GetProperty("id").GetGuid();
        var closedAt = closerBody.GetProperty("recordedAt").GetDateTimeOffset();
        interceptor.BeforePut = null;

        // Read later than the close: the stored copy is done when the lists already showed it done (review CR6), at the
        // closer's recordedAt, not at the time it happened to be read.
        clock.Advance(TimeSpan.FromHours(2));
        var read = (await grain.GetAsync())!;
        Assert.Equal($"follow-up:{closer:N}", read.DoneBy);
        Assert.Equal(closedAt, read.DoneAt);
        var stored = JsonNode.Parse((await app.Services.GetRequiredService<IRoutingStore>().GetAsync(CustomerFollowUpGrain.Kind, first.ToString("N")))!)!;
        Assert.Equal(closedAt, stored["doneAt"]!.GetValue<DateTimeOffset>());
        Assert.Equal($"follow-up:{closer:N}", (string?)stored["doneBy"]);
    }

    // Review CX3: two entries both closing one (two tabs, a double submit), the later recordedAt on the smaller id. The
    // log took the smallest id and the earliest recordedAt (two different closers), the stored copy whichever closer
    // SQLite returned first; both now take the earliest recorded, then the smaller id.
    [Fact]
    public async Task Of_two_entries_closing_one_the_log_and_the_stored_copy_name_the_same_closer_and_time()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("cx3-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var created = await alice.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", new { how = "phone", nextDueAt = clock.GetUtcNow().AddHours(1) });
        var entry = (await created.Content.ReadFromJsonAsync<JsonElement>(CrmApp.Json)).GetProperty("id").GetGuid();

        // The two closers as a crash before either closed the entry leaves them: stored, naming it, the entry still open.
        var store = app.Services.GetRequiredService<IRoutingStore>();
        var (earlier, later) = (clock.GetUtcNow().AddMinutes(1), clock.GetUtcNow().AddMinutes(2));
        var (smaller, larger) = (Guid.Parse("00000000-0000-7000-8000-000000000001"), Guid.Parse("ffffffff-ffff-7fff-bfff-ffffffffffff"));
        CustomerFollowUp Closer(Guid id, DateTimeOffset recordedAt) => new()
        {
            Id = id, CustomerId = customer, By = "alice", At = recordedAt, How = FollowUpChannel.Email, Outcome = "Called back", RecordedAt = recordedAt,
            Closes = [entry],
        };
        await store.PutAsync(CustomerFollowUpGrain.Kind, smaller.ToString("N"), RoutingJson.Write(Closer(smaller, later)));
        await store.PutAsync(CustomerFollowUpGrain.Kind, larger.ToString("N"), RoutingJson.Write(Closer(larger, earlier)));

        var logged = (await store.CustomerFollowUpsAsync(customer, false, null, null, 50)).Select(RoutingJson.Read<CustomerFollowUp>).Single(f => f.Id == entry);
        Assert.Equal(($"follow-up:{larger:N}", (DateTimeOffset?)earlier), (logged.DoneBy, logged.DoneAt));

        // The entry's own tick finds it closed: its stored copy says what the log said.
        clock.Advance(TimeSpan.FromHours(2));
        // The store's own query finds that closer (it found none: a bare "Json" inside json_each is json_each's column).
        Assert.Equal(larger, await store.FollowUpClosedByAsync(customer, entry));
        await app.Grains.GetGrain<ICustomerFollowUpGrain>(entry).AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        var stored = RoutingJson.Read<CustomerFollowUp>((await store.GetAsync(CustomerFollowUpGrain.Kind, entry.ToString("N")))!);
        Assert.Equal((logged.DoneBy, logged.DoneAt), (stored.DoneBy, stored.DoneAt));
    }

    // routing4 review RR11: entries stored before times were kept in UTC carry the caller's offset; the log sorted and
    // paged on the stored text, so such an entry came out of order (and a cursor could skip or repeat it).
    [Fact]
    public async Task The_follow_up_log_pages_entries_stored_with_an_offset_in_time_order_each_once()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rr11-1", GrainScenario.NewPhone(), "Hi"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var now = DateTimeOffset.UtcNow;
        var ids = new List<Guid>();
        foreach (var hoursAgo in new[] { 1, 2, 3 })
        {
            var response = await alice.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", new { how = "phone", at = now.AddHours(-hoursAgo) });
            ids.Add((await response.Content.ReadFromJsonAsync<JsonElement>(CrmApp.Json)).GetProperty("id").GetGuid());
        }
        // The middle entry as an older version stored it: the same instant written with +02:00 (its text sorts newest).
        var store = app.Services.GetRequiredService<IRoutingStore>();
        var middle = JsonNode.Parse((await store.GetAsync(CustomerFollowUpGrain.Kind, ids[1].ToString("N")))!)!;
        middle["at"] = now.AddHours(-2).ToOffset(TimeSpan.FromHours(2)).ToString("yyyy-MM-dd'T'HH:mm:ss.fffffffzzz", System.Globalization.CultureInfo.InvariantCulture);
        await store.PutAsync(CustomerFollowUpGrain.Kind, ids[1].ToString("N"), middle.ToJsonString());

        var walked = new List<Guid>();
        string? cursor = null;
        for (var pages = 0; pages < 10; pages++)
        {
            var page = await alice.GetFromJsonAsync<JsonElement>($"/api/v1/customers/{customer}/follow-ups?pageSize=1"
                + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            walked.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetGuid()));
            if (!page.GetProperty("hasMore").GetBoolean())
                break;
            cursor = page.GetProperty("nextCursor").GetString();
        }
        Assert.Equal(ids, walked);

        // RR12: the follow-up lists refuse the offset parameter like the ticket list, instead of ignoring it.
        foreach (var path in new[] { $"/api/v1/customers/{customer}/follow-ups?page=2", "/api/v1/follow-ups/due?page=1" })
        {
            var refused = await alice.GetAsync(path);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
            Assert.Equal("page", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        }
    }
}
