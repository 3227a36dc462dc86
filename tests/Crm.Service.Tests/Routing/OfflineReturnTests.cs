using Crm.Service.Contracts;
using Crm.Service.Grains.Assignment;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

public sealed class OfflineReturnTests
{
    private static Task FireAsync(CrmApp app, string team) =>
        // Orleans ticks on real time; the queue acts on the fake clock, so the test delivers the tick itself.
        app.Grains.GetGrain<ITeamQueueGrain>(team).AsReference<IActivationProbe>().FireReminderAsync(TeamQueueGrain.OfflineReminder);

    [Fact]
    public async Task An_agent_offline_longer_than_the_team_allows_gets_new_tickets_requeued_to_another_after_a_restart_and_keeps_the_started_one()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        const string team = "offline-team";
        long fresh, started;
        string grainId;
        await using (var first = new CrmApp(data.Path, clock: clock))
        {
            var queue = first.Grains.GetGrain<ITeamQueueGrain>(team);
            await queue.ConfigureAsync(new TeamAssignmentSettings
            {
                Policy = AssignmentPolicy.RoundRobin,
                Agents = [new AgentCapacity("olga", []), new AgentCapacity("pete", [])],
                ReturnTicketsAfterOffline = TimeSpan.FromMinutes(30),
            });
            await queue.SetOnlineAsync("olga", true);
            var scenario = await new GrainScenario(first.Grains).CreateChannelAsync();
            async Task<long> IntoTeamAsync(string id)
            {
                var number = (await scenario.ReceiveAsync(scenario.Message(id, GrainScenario.NewPhone()))).TicketNumber;
                // Under the fake clock the change feed does not run: the test makes the "assignment" consumer's call.
                await queue.ObserveAsync(await first.Grains.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Team = team }, "admin"));
                return number;
            }
            fresh = await IntoTeamAsync("off-1");
            started = await IntoTeamAsync("off-2");
            Assert.Equal("olga", (await first.Grains.GetGrain<ITicketGrain>(fresh).GetAsync())!.Assignee);
            Assert.Equal("olga", (await first.Grains.GetGrain<ITicketGrain>(started).GetAsync())!.Assignee);
            // Olga starts one of them (Open), then goes offline.
            await queue.ObserveAsync(await first.Grains.GetGrain<ITicketGrain>(started).ChangeAsync(new TicketChange { Status = TicketStatus.Open }, "olga"));
            await queue.SetOnlineAsync("olga", false);
            grainId = queue.GetGrainId().ToString();
            Assert.Equal(1, await first.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == grainId && r.Name == TeamQueueGrain.OfflineReminder)));

            // A tick before the team's 30 minutes are up changes nothing.
            clock.Advance(TimeSpan.FromMinutes(20));
            await FireAsync(first, team);
            Assert.Equal("olga", (await first.Grains.GetGrain<ITicketGrain>(fresh).GetAsync())!.Assignee);
        }

        // The host is down when the 30 minutes end and comes back later: the reminder is still stored, and its tick
        // (late) returns Olga's new ticket to the queue, which gives it to Pete; her started ticket stays hers.
        clock.Advance(TimeSpan.FromMinutes(15));
        await using var second = new CrmApp(data.Path, clock: clock);
        Assert.Equal(1, await second.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == grainId && r.Name == TeamQueueGrain.OfflineReminder)));
        var again = second.Grains.GetGrain<ITeamQueueGrain>(team);
        await again.SetOnlineAsync("pete", true);
        await FireAsync(second, team);
        await FireAsync(second, team);
        var returned = (await second.Grains.GetGrain<ITicketGrain>(fresh).GetAsync())!;
        Assert.Equal(("pete", TicketStatus.New), (returned.Assignee, returned.Status));
        var kept = (await second.Grains.GetGrain<ITicketGrain>(started).GetAsync())!;
        Assert.Equal(("olga", TicketStatus.Open), (kept.Assignee, kept.Status));
        var snapshot = await again.GetAsync();
        Assert.Equal((1, 1), (snapshot.OpenTickets["olga"], snapshot.OpenTickets["pete"]));
        Assert.Empty(snapshot.Waiting);
        // Taken from Olga once and given to Pete once (the repeated tick did nothing).
        var key = fresh.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var assignee = await second.QueryAsync(db => db.Audit.Where(a => a.EntityType == "ticket" && a.EntityId == key && a.Field == "assignee").CountAsync());
        Assert.Equal(3, assignee);
    }
}
