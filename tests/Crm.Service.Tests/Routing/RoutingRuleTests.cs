using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Grains.Routing;
using Crm.Service.Grains.Sla;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

public sealed class RoutingRuleTests
{
    private static async Task<long> OpenTicketAsync(CrmApp app, string id, string text, string? subject = null)
    {
        var response = await app.PostMessageAsync(new { messageId = id, sender = new { id = $"{id}@example.com", kind = "email" }, subject, text });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private static Task<int> RoutingChangesAsync(CrmApp app, long ticket)
    {
        var key = ticket.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return app.QueryAsync(db => db.Audit.CountAsync(a => a.EntityType == "ticket" && a.EntityId == key && a.Actor == TicketRoutingGrain.Actor));
    }

    [Fact]
    public async Task New_tickets_take_the_first_matching_rule_once_through_the_change_feed()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await app.CreateApiChannelAsync();
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/teams/billing", new { name = "Billing" })).EnsureSuccessStatusCode();
        // The catch-all comes first by id but last by order: order decides.
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/a-general", new { name = "Everything else", order = 100, addTags = new[] { "general" } })).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/invoices", new
        {
            name = "Invoices to billing",
            order = 1,
            conditions = new { channelAccounts = new[] { "bridge" }, keywords = new[] { "invoice", "refund" } },
            team = "billing",
            priority = "high",
            addTags = new[] { "billing" },
        })).EnsureSuccessStatusCode();
        var rules = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/routing-rules");
        Assert.Equal(["invoices", "a-general"], rules.EnumerateArray().Select(r => r.GetProperty("id").GetString()));

        // The keyword is in the body only (the subject says nothing).
        var billing = await OpenTicketAsync(app, "route-1", "Hello, I was charged twice, please send a REFUND.", subject: "Question");
        var other = await OpenTicketAsync(app, "route-2", "How do I reset my password?");
        var routed = await Eventually.WaitForAsync(() => app.Grains.GetGrain<ITicketGrain>(billing).GetAsync(),
            t => t!.Team == "billing", what: "the change feed to route the refund ticket to billing");
        Assert.Equal(TicketPriority.High, routed!.Priority);
        Assert.Equal(["billing"], routed.Tags);
        var general = await Eventually.WaitForAsync(() => app.Grains.GetGrain<ITicketGrain>(other).GetAsync(),
            t => t!.Tags.Contains("general"), what: "the catch-all rule on the other ticket");
        Assert.Null(general!.Team);
        Assert.Equal(TicketPriority.Normal, general.Priority);

        // An agent lowers the priority; a redelivered "created" change (or the other consumer asking) changes nothing.
        using var agent = await app.AgentAsync();
        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{billing}", new { priority = "low" })).EnsureSuccessStatusCode();
        var decision = await app.Grains.GetGrain<ITicketRoutingGrain>(billing).RouteAsync();
        Assert.Equal(("invoices", true), (decision!.RuleId, decision.Applied));
        Assert.Equal(TicketPriority.Low, (await app.Grains.GetGrain<ITicketGrain>(billing).GetAsync())!.Priority);
        // One ticket change by routing: team, priority and tags in one write (audit rows per field, one per field).
        var key = billing.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var fields = await app.QueryAsync(db => db.Audit.Where(a => a.EntityType == "ticket" && a.EntityId == key && a.Actor == TicketRoutingGrain.Actor)
            .Select(a => a.Field).ToListAsync());
        Assert.Equal(["priority", "tags", "team"], fields.Order());

        // A rule added later does not re-route tickets that were already routed.
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/a-general", new { name = "Everything else", order = -1, addTags = new[] { "late" } })).EnsureSuccessStatusCode();
        await app.Grains.GetGrain<ITicketRoutingGrain>(other).RouteAsync();
        Assert.DoesNotContain("late", (await app.Grains.GetGrain<ITicketGrain>(other).GetAsync())!.Tags);
    }

    [Fact]
    public async Task A_stored_decision_not_yet_applied_is_applied_once_and_a_rule_checks_the_calendar_at_creation_time()
    {
        using var data = new TempDirectory();
        // Saturday 2026-11-21 23:30 in Berlin (22:30 UTC): the office calendar is closed.
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 21, 22, 30, 0, TimeSpan.Zero));
        await using var app = new CrmApp(data.Path, clock: clock);
        await app.CreateApiChannelAsync();
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/teams/night", new { name = "Night shift" })).EnsureSuccessStatusCode();
        var hours = new[] { "monday", "tuesday", "wednesday", "thursday", "friday" }.Select(d => new { day = d, open = "09:00:00", close = "17:00:00" });
        (await admin.PutAsJsonAsync("/api/v1/admin/calendars/office", new { name = "Office", timeZone = "Europe/Berlin", hours })).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/after-hours", new
        {
            name = "After hours",
            conditions = new { calendarId = "office", inBusinessHours = false },
            team = "night",
            addTags = new[] { "after-hours" },
        })).EnsureSuccessStatusCode();
        // Late evening in the calendar's zone (23:00-06:00 Berlin), not in UTC.
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/late", new
        {
            name = "Late evening",
            order = -1,
            conditions = new { calendarId = "office", from = "23:00:00", to = "06:00:00" },
            priority = "high",
        })).EnsureSuccessStatusCode();

        // The channel API checks signatures against real time, so under this fake clock messages come in through the grains.
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        async Task<long> OpenAsync(string id, string text) => (await scenario.ReceiveAsync(scenario.Message(id, GrainScenario.NewPhone(), text))).TicketNumber;
        var saturday = await OpenAsync("cal-1", "Anyone there?");
        // Under the fake clock the change feed does not run; the test makes the consumers' call, and later than the
        // ticket's creation: the rule still checks the time the ticket came in.
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal("late", (await app.Grains.GetGrain<ITicketRoutingGrain>(saturday).RouteAsync())!.RuleId);
        Assert.Equal(TicketPriority.High, (await app.Grains.GetGrain<ITicketGrain>(saturday).GetAsync())!.Priority);

        // Monday 10:00 Berlin: open, not late; no rule matches, and nothing changes.
        clock.SetUtcNow(new DateTimeOffset(2026, 11, 23, 9, 0, 0, TimeSpan.Zero));
        var monday = await OpenAsync("cal-2", "Good morning");
        var none = await app.Grains.GetGrain<ITicketRoutingGrain>(monday).RouteAsync();
        Assert.Null(none!.RuleId);
        Assert.Equal(0, await RoutingChangesAsync(app, monday));

        // A crash after the decision was stored and before it reached the ticket: the next call applies the stored
        // decision (not a new evaluation: it is Monday morning now, which matches no rule) exactly once.
        var sunday = await OpenAsync("cal-3", "Weekend question");
        var store = app.Services.GetRequiredService<IRoutingStore>();
        await store.PutAsync(RoutingKinds.TicketRouting, sunday.ToString(System.Globalization.CultureInfo.InvariantCulture), RoutingJson.Write(new TicketRouting
        {
            RuleId = "after-hours",
            Change = new TicketChange { Team = "night", Tags = ["after-hours"] },
            DecidedAt = clock.GetUtcNow(),
        }));
        var applied = await app.Grains.GetGrain<ITicketRoutingGrain>(sunday).RouteAsync();
        Assert.Equal(("after-hours", true), (applied!.RuleId, applied.Applied));
        await app.Grains.GetGrain<ITicketRoutingGrain>(sunday).RouteAsync();
        var ticket = (await app.Grains.GetGrain<ITicketGrain>(sunday).GetAsync())!;
        Assert.Equal(("night", TicketPriority.Normal), (ticket.Team, ticket.Priority));
        Assert.Equal(["after-hours"], ticket.Tags);
        Assert.Equal(2, await RoutingChangesAsync(app, sunday)); // team and tags, written once
    }

    [Fact]
    public async Task Segment_and_language_conditions_match_the_customers_segment_field_and_language_prefix()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var admin = app.Admin();
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        // Each customer writes once and gets their profile; the rules come after, then each writes again in a new
        // thread: that new ticket is routed (by the change feed, or here: the call returns the stored decision) on the
        // customer's profile.
        async Task<string> CustomerAsync(string id, string? language, IReadOnlyDictionary<string, string?> fields)
        {
            var phone = GrainScenario.NewPhone();
            var opened = await scenario.ReceiveAsync(scenario.Message(id, phone));
            await app.Grains.GetGrain<ICustomerGrain>(opened.CustomerId).UpdateProfileAsync(new CustomerProfileChange { Language = language, CustomFields = fields }, "test");
            return phone;
        }
        var vipGerman = await CustomerAsync("seg-1", "de-AT", new Dictionary<string, string?> { ["segment"] = "vip" });
        var smbGerman = await CustomerAsync("seg-2", "de-AT", new Dictionary<string, string?> { ["segment"] = "smb" });
        var upperGerman = await CustomerAsync("seg-3", "DE", new Dictionary<string, string?>());
        var english = await CustomerAsync("seg-4", "en-de", new Dictionary<string, string?> { ["tier"] = "VIP" });
        var unknown = await CustomerAsync("seg-5", null, new Dictionary<string, string?>());
        (await admin.PutAsJsonAsync("/api/v1/admin/teams/vip", new { name = "VIP desk" })).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/vip", new
        {
            name = "VIP customers", order = 1, conditions = new { segments = new[] { "VIP", "Enterprise" } }, team = "vip", addTags = new[] { "vip" },
        })).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/german", new
        {
            name = "German speakers", order = 2, conditions = new { languages = new[] { "de" } }, addTags = new[] { "skill:de" },
        })).EnsureSuccessStatusCode();
        async Task<TicketSnapshot> RouteAsync(string phone)
        {
            var opened = await scenario.ReceiveAsync(scenario.Message("again-" + phone, phone, thread: "second:" + phone));
            await app.Grains.GetGrain<ITicketRoutingGrain>(opened.TicketNumber).RouteAsync();
            return (await app.Grains.GetGrain<ITicketGrain>(opened.TicketNumber).GetAsync())!;
        }

        // The segment matches in any case, and comes first by order even for a German speaker.
        var vip = await RouteAsync(vipGerman);
        Assert.Equal(("vip", "vip"), (vip.Team, string.Join(",", vip.Tags)));
        // Another segment: the language rule, by prefix ("de" matches "de-AT" and "DE").
        var german = await RouteAsync(smbGerman);
        Assert.Equal(((string?)null, "skill:de"), (german.Team, string.Join(",", german.Tags)));
        Assert.Equal(["skill:de"], (await RouteAsync(upperGerman)).Tags);
        // Only the "segment" field counts, and a language that merely contains "de" is not a prefix match.
        var other = await RouteAsync(english);
        Assert.Equal(((string?)null, 0), (other.Team, other.Tags.Count));
        // No language and no segment at all match neither.
        var none = await RouteAsync(unknown);
        Assert.Equal(((string?)null, 0), (none.Team, none.Tags.Count));
    }

    [Fact]
    public void Time_of_day_counts_in_the_calendars_zone_and_business_hours_follow_the_calendar()
    {
        var office = BusinessCalendar.From(new BusinessCalendarDefinition
        {
            Id = "ny",
            Name = "New York",
            TimeZone = "America/New_York",
            Hours = [.. new[] { DayOfWeek.Monday, DayOfWeek.Tuesday }.Select(d => new BusinessHoursRange(d, TimeSpan.FromHours(9), TimeSpan.FromHours(17)))],
        });
        var calendars = new Dictionary<string, BusinessCalendar> { ["ny"] = office };
        TicketFacts At(DateTimeOffset at, IReadOnlyDictionary<string, BusinessCalendar>? known = null) => new(new TicketSnapshot
        {
            Number = 1, Subject = "x", Status = TicketStatus.New, Priority = TicketPriority.Normal, CustomerId = Guid.Empty, CreatedAt = at, UpdatedAt = at,
        }, ChannelKind.Api, "bridge", null, null, at, known ?? calendars);
        var morning = new TicketConditions { CalendarId = "ny", From = TimeSpan.FromHours(8), To = TimeSpan.FromHours(10) };
        // Monday 2026-11-23 14:30 UTC = 09:30 in New York (EST, UTC-5).
        var mondayMorning = new DateTimeOffset(2026, 11, 23, 14, 30, 0, TimeSpan.Zero);
        Assert.True(TicketConditionMatcher.Matches(morning, At(mondayMorning)));
        Assert.False(TicketConditionMatcher.Matches(morning with { CalendarId = null }, At(mondayMorning)));
        Assert.True(TicketConditionMatcher.Matches(new TicketConditions { CalendarId = "ny", InBusinessHours = true }, At(mondayMorning)));
        Assert.False(TicketConditionMatcher.Matches(new TicketConditions { CalendarId = "ny", InBusinessHours = false }, At(mondayMorning)));
        // Summer time: 13:30 UTC on Monday 2026-06-22 is 09:30 EDT (UTC-4).
        Assert.True(TicketConditionMatcher.Matches(morning, At(new DateTimeOffset(2026, 6, 22, 13, 30, 0, TimeSpan.Zero))));
        Assert.True(TicketConditionMatcher.Matches(new TicketConditions { CalendarId = "ny", InBusinessHours = false }, At(mondayMorning.AddDays(2))));
        // A condition naming a calendar that is gone matches nothing.
        Assert.False(TicketConditionMatcher.Matches(new TicketConditions { CalendarId = "ny", InBusinessHours = false }, At(mondayMorning.AddDays(2), new Dictionary<string, BusinessCalendar>())));
    }

    [Fact]
    public async Task Admin_API_refuses_rules_it_could_not_run_with_errors_that_say_what_to_fix()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var admin = app.Admin();
        async Task<string> RefusedAsync(string id, object body)
        {
            var response = await admin.PutAsJsonAsync($"/api/v1/admin/routing-rules/{id}", body);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
            return await response.Content.ReadAsStringAsync();
        }
        Assert.Contains("No team 'ghosts'", await RefusedAsync("r1", new { name = "R", team = "ghosts" }));
        Assert.Contains("something to do", await RefusedAsync("r1", new { name = "R" }));
        Assert.Contains("both from and to", await RefusedAsync("r1", new { name = "R", priority = "high", conditions = new { from = "18:00:00" } }));
        Assert.Contains("needs a calendarId", await RefusedAsync("r1", new { name = "R", priority = "high", conditions = new { inBusinessHours = true } }));
        Assert.Contains("No calendar 'gone'", await RefusedAsync("r1", new { name = "R", priority = "high", conditions = new { calendarId = "gone" } }));
        Assert.Contains("empty keywords", await RefusedAsync("r1", new { name = "R", priority = "high", conditions = new { keywords = new[] { " " } } }));
        Assert.Contains("time zone", await RefusedAsync("r1", new { name = "R", priority = "high", conditions = new { timeZone = "Mars/Olympus", from = "01:00:00", to = "02:00:00" } }));
        Assert.Contains("lower-case", await RefusedAsync("Bad_Id", new { name = "R", priority = "high" }));

        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/r1", new { name = "Urgent words", priority = "urgent", conditions = new { keywords = new[] { "outage" } } })).EnsureSuccessStatusCode();
        Assert.Equal("urgent", (await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/routing-rules/r1")).GetProperty("priority").GetString());
        using var agent = await app.AgentAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await agent.GetAsync("/api/v1/admin/routing-rules")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/admin/routing-rules/r1")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/admin/routing-rules/r1")).StatusCode);
    }
}
