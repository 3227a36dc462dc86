using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

public sealed class SlaClockTests
{
    private static readonly object OneHourFirstResponse = new
    {
        name = "Standard",
        targets = new[]
        {
            new { priority = "normal", firstResponse = "01:00:00", resolution = "1.00:00:00" },
            new { priority = "high", firstResponse = "02:00:00", resolution = "1.00:00:00" },
        },
        warningAt = 0.8,
        escalations = new[] { new { after = "00:00:00", notifyAssignee = true, notifySupervisors = true, raisePriorityTo = "urgent", addTag = "sla-breached" } },
    };

    private static async Task<long> OpenTicketAsync(CrmApp app, string id)
    {
        var accepted = await (await app.PostMessageAsync(new { messageId = id, sender = new { id = $"{id}@example.com", kind = "email" }, text = "Help, please" }))
            .Content.ReadFromJsonAsync<JsonElement>();
        return accepted.GetProperty("ticketNumber").GetInt64();
    }

    // The change feed's "sla" consumer makes this call after every ticket change. Under the tests' fake clock the feed's
    // dispatcher does not run (its gather delay waits on that clock), so the test makes the same call itself.
    private static Task<SlaStatus> WaitForClocksAsync(CrmApp app, long ticket, Func<SlaStatus, bool> done, string what) =>
        Eventually.WaitForAsync(() => app.Grains.GetGrain<ISlaClockGrain>(ticket).SyncAsync(), done, what: what);

    private static async Task<SlaStatus> TickAsync(CrmApp app, long ticket)
    {
        var grain = app.Grains.GetGrain<ISlaClockGrain>(ticket);
        // Orleans ticks on real time; the grain acts on the fake clock, so the test delivers the tick itself.
        await grain.AsReference<IActivationProbe>().FireReminderAsync("sla");
        return await grain.GetAsync();
    }

    [Fact]
    public async Task The_warning_fires_once_across_a_restart_and_the_breach_fires_at_the_right_time_after_it()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var created = clock.GetUtcNow();
        long ticket;
        string reminderGrain;
        await using (var first = new CrmApp(data.Path, clock: clock))
        {
            await first.CreateApiChannelAsync();
            using var admin = first.Admin();
            (await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/standard", OneHourFirstResponse)).EnsureSuccessStatusCode();
            ticket = await OpenTicketAsync(first, "restart-1");
            var started = await WaitForClocksAsync(first, ticket, s => s.Clocks.Count == 2, "the ticket's SLA clocks");
            Assert.Equal("standard", started.PolicyId);
            Assert.Equal(created.AddHours(1), started.Clocks.Single(c => c.Metric == SlaMetric.FirstResponse).DueAt);
            Assert.Equal(created.AddMinutes(48), started.NextDueAt);
            reminderGrain = first.Grains.GetGrain<ISlaClockGrain>(ticket).GetGrainId().ToString();
            Assert.Equal(1, await first.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == reminderGrain && r.Name == "sla")));

            clock.Advance(TimeSpan.FromMinutes(47));
            Assert.Empty((await TickAsync(first, ticket)).Events);
            clock.Advance(TimeSpan.FromMinutes(2));
            var warned = await TickAsync(first, ticket);
            var warning = Assert.Single(warned.Events);
            Assert.Equal(("warning", SlaMetric.FirstResponse, created.AddMinutes(48)), (warning.Milestone, warning.Metric, warning.DueAt));
            Assert.Equal(created.AddHours(1), warned.NextDueAt);
        }

        clock.Advance(TimeSpan.FromMinutes(1));
        await using var second = new CrmApp(data.Path, clock: clock);
        Assert.Equal(1, await second.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == reminderGrain && r.Name == "sla")));
        // Ticks after the restart, before the breach: the warning is not repeated and nothing else fires.
        Assert.Single((await TickAsync(second, ticket)).Events);
        clock.Advance(TimeSpan.FromMinutes(9.5));
        Assert.Single((await TickAsync(second, ticket)).Events);
        Assert.Equal(TicketPriority.Normal, (await second.Grains.GetGrain<ITicketGrain>(ticket).GetAsync())!.Priority);

        clock.Advance(TimeSpan.FromMinutes(1));
        var breached = await TickAsync(second, ticket);
        Assert.Equal(["warning", "breach-1"], breached.Events.Select(e => e.Milestone));
        Assert.Equal(created.AddHours(1), breached.Events[1].DueAt);
        Assert.True(breached.Clocks.Single(c => c.Metric == SlaMetric.FirstResponse).Breached);
        var escalated = (await second.Grains.GetGrain<ITicketGrain>(ticket).GetAsync())!;
        Assert.Equal(TicketPriority.Urgent, escalated.Priority);
        Assert.Contains("sla-breached", escalated.Tags);
        // A repeated tick (Orleans re-ticks every period) changes nothing.
        Assert.Equal(2, (await TickAsync(second, ticket)).Events.Count);
    }

    [Fact]
    public async Task Pending_pauses_the_clocks_and_a_reply_stops_the_first_response_clock()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var created = clock.GetUtcNow();
        await using var app = new CrmApp(data.Path, clock: clock);
        await app.CreateApiChannelAsync();
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/standard", OneHourFirstResponse)).EnsureSuccessStatusCode();
        var ticket = await OpenTicketAsync(app, "pause-1");
        await WaitForClocksAsync(app, ticket, s => s.Clocks.Count == 2, "the ticket's SLA clocks");
        using var agent = await app.AgentAsync();

        clock.Advance(TimeSpan.FromMinutes(30));
        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "pending" })).EnsureSuccessStatusCode();
        await WaitForClocksAsync(app, ticket, s => s.Clocks.All(c => !c.Running), "the clocks to pause");
        clock.Advance(TimeSpan.FromHours(5));
        Assert.Empty((await TickAsync(app, ticket)).Events);

        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "open" })).EnsureSuccessStatusCode();
        var resumed = await WaitForClocksAsync(app, ticket, s => s.Clocks.All(c => c.Running), "the clocks to resume");
        // 30 minutes were used before the pause; 30 are left from the moment it resumed.
        Assert.Equal(clock.GetUtcNow().AddMinutes(30), resumed.Clocks.Single(c => c.Metric == SlaMetric.FirstResponse).DueAt);
        Assert.Equal(TimeSpan.FromMinutes(30), resumed.Clocks.Single(c => c.Metric == SlaMetric.FirstResponse).Elapsed);

        (await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text = "On it" })).EnsureSuccessStatusCode();
        var answered = await WaitForClocksAsync(app, ticket, s => s.Clocks.Single(c => c.Metric == SlaMetric.FirstResponse).StoppedAt is not null, "the first response");
        Assert.False(answered.Clocks.Single(c => c.Metric == SlaMetric.FirstResponse).Breached);
        clock.Advance(TimeSpan.FromHours(2));
        var later = await TickAsync(app, ticket);
        Assert.DoesNotContain(later.Events, e => e.Metric == SlaMetric.FirstResponse);
        Assert.Equal(created, later.Clocks.Single(c => c.Metric == SlaMetric.Resolution).DueAt!.Value.AddDays(-1).AddHours(-5));

        var sla = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}/sla");
        Assert.Equal("standard", sla.GetProperty("policyId").GetString());
    }

    [Fact]
    public async Task Admin_API_checks_calendars_and_policies_and_imports_holidays()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var admin = app.Admin();
        var badZone = await admin.PutAsJsonAsync("/api/v1/admin/calendars/office", new { name = "Office", timeZone = "Nowhere/Else", hours = Array.Empty<object>() });
        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, badZone.StatusCode);
        Assert.Contains("time zone", await badZone.Content.ReadAsStringAsync());
        var hours = new[] { "monday", "tuesday", "wednesday", "thursday", "friday" }.Select(d => new { day = d, open = "09:00:00", close = "17:00:00" });
        (await admin.PutAsJsonAsync("/api/v1/admin/calendars/office", new { name = "Office", timeZone = "Europe/Berlin", hours })).EnsureSuccessStatusCode();
        using var ics = new StringContent("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:x@t\r\nDTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261227\r\nSUMMARY:Christmas\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", System.Text.Encoding.UTF8, "text/calendar");
        var imported = await (await admin.PostAsync("/api/v1/admin/calendars/office/holidays/import?from=2026&to=2026", ics)).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(["2026-12-25", "2026-12-26"], imported.GetProperty("holidays").EnumerateArray().Select(d => d.GetString()));

        var noCalendar = await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/vip", new { name = "VIP", calendarId = "missing", targets = new[] { new { priority = "high", firstResponse = "00:30:00" } } });
        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, noCalendar.StatusCode);
        var badWarning = await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/vip", new { name = "VIP", warningAt = 1.5, targets = new[] { new { priority = "high", firstResponse = "00:30:00" } } });
        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, badWarning.StatusCode);
        (await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/vip", new { name = "VIP", calendarId = "office", conditions = new { customerTags = new[] { "vip" } },
            targets = new[] { new { priority = "high", firstResponse = "00:30:00" } } })).EnsureSuccessStatusCode();
        var policies = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/sla-policies");
        Assert.Equal("office", policies[0].GetProperty("calendarId").GetString());
        using var agent = await app.AgentAsync();
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, (await agent.GetAsync("/api/v1/admin/sla-policies")).StatusCode);
    }
}
