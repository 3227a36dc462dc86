using Crm.Service.Contracts;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Routing;

[Collection(ClusterCollection.Name)]
public sealed class TeamQueueGrainTests(TestClusterFixture fixture)
{
    [Fact]
    public async Task Two_hundred_concurrent_tickets_into_one_team_are_each_assigned_exactly_once()
    {
        var team = "q-" + Guid.NewGuid().ToString("N")[..10];
        var queue = fixture.Grains.GetGrain<ITeamQueueGrain>(team);
        var agents = Enumerable.Range(0, 10).Select(i => $"{team}-agent-{i}").ToList();
        await queue.ConfigureAsync(new TeamAssignmentSettings { Policy = AssignmentPolicy.RoundRobin, Agents = [.. agents.Select(a => new AgentCapacity(a, [], 1000))] });
        await Task.WhenAll(agents.Select(a => queue.SetOnlineAsync(a, true)));

        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var opened = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => scenario.ReceiveAsync(scenario.Message($"q-{i}", GrainScenario.NewPhone()))));
        var numbers = opened.Select(o => o.TicketNumber).ToList();
        var moved = await Task.WhenAll(numbers.Select(n => fixture.Grains.GetGrain<ITicketGrain>(n).ChangeAsync(new TicketChange { Team = team }, "admin")));
        // The change feed's "assignment" consumer makes these calls; under the fixture's fake clock its dispatcher does not
        // run, so the test makes them, twice per ticket and all at once (a redelivery racing the first delivery).
        await Task.WhenAll(moved.Concat(moved).Select(t => queue.ObserveAsync(t)));

        var tickets = await Eventually.WaitForAsync(
            () => Task.WhenAll(numbers.Select(n => fixture.Grains.GetGrain<ITicketGrain>(n).GetAsync())),
            all => all.All(t => !string.IsNullOrEmpty(t!.Assignee)), what: "every ticket to be assigned");
        Assert.All(tickets.GroupBy(t => t!.Assignee), g => Assert.Equal(20, g.Count()));
        var keys = numbers.Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var assignments = await fixture.QueryAsync(db => db.Audit
            .Where(a => a.EntityType == "ticket" && keys.Contains(a.EntityId) && a.Field == "assignee").ToListAsync());
        Assert.Equal(200, assignments.Count);
        Assert.Equal(200, assignments.Select(a => a.EntityId).Distinct().Count());
        var snapshot = await queue.GetAsync();
        Assert.Empty(snapshot.Waiting);
        Assert.All(agents, a => Assert.Equal(20, snapshot.OpenTickets[a]));

        // Resolving frees capacity in the queue.
        var resolved = await fixture.Grains.GetGrain<ITicketGrain>(numbers[0]).ChangeAsync(new TicketChange { Status = TicketStatus.Resolved }, "agent");
        await queue.ObserveAsync(resolved);
        var holder = tickets.Single(t => t!.Number == numbers[0])!.Assignee!;
        await Eventually.WaitForAsync(queue.GetAsync, s => s.OpenTickets[holder] == 19, what: "the resolved ticket to free capacity");
    }

    [Fact]
    public async Task Web_chats_count_against_concurrent_chats_and_least_loaded_skips_pending_tickets()
    {
        var team = "qc-" + Guid.NewGuid().ToString("N")[..10];
        var (a, b) = ($"{team}-a", $"{team}-b");
        var queue = fixture.Grains.GetGrain<ITeamQueueGrain>(team);
        await queue.ConfigureAsync(new TeamAssignmentSettings
        {
            Policy = AssignmentPolicy.LeastLoaded,
            Agents = [new AgentCapacity(a, [], 10, MaxConcurrentChats: 1), new AgentCapacity(b, [], 10)],
        });
        await queue.SetOnlineAsync(a, true);
        // A web chat channel and an API one: the queue reads the ticket's channel itself.
        var chat = new GrainScenario(fixture.Grains);
        await fixture.Grains.GetGrain<IChannelAccountGrain>(chat.Channel).ConfigureAsync(new ChannelAccountSettings { Kind = ChannelKind.WebChat, Name = "chat" });
        var api = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        async Task<long> IntoTeamAsync(GrainScenario scenario, string id)
        {
            var number = (await scenario.ReceiveAsync(scenario.Message(id, GrainScenario.NewPhone()))).TicketNumber;
            await queue.ObserveAsync(await fixture.Grains.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Team = team }, "admin"));
            return number;
        }
        Task<TicketSnapshot?> TicketAsync(long number) => fixture.Grains.GetGrain<ITicketGrain>(number).GetAsync();

        var chat1 = await IntoTeamAsync(chat, $"{team}-c1");
        var chat2 = await IntoTeamAsync(chat, $"{team}-c2");
        var mail = await IntoTeamAsync(api, $"{team}-m1");
        Assert.Equal(a, (await TicketAsync(chat1))!.Assignee);
        Assert.Equal(a, (await TicketAsync(mail))!.Assignee);
        Assert.Null((await TicketAsync(chat2))!.Assignee);
        var snapshot = await queue.GetAsync();
        Assert.Equal([chat2], snapshot.Waiting.Select(w => w.Number));
        Assert.Equal((2, 1), (snapshot.OpenTickets[a], snapshot.OpenChats![a]));
        await queue.SetOnlineAsync(b, true);
        Assert.Equal(b, (await TicketAsync(chat2))!.Assignee);

        // a's two tickets wait on the customer: their SLA clocks are paused, so a (0 running) is less loaded than b (1).
        foreach (var number in new[] { chat1, mail })
            await queue.ObserveAsync(await fixture.Grains.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Status = TicketStatus.Pending }, a));
        var next = await IntoTeamAsync(api, $"{team}-m2");
        Assert.Equal(a, (await TicketAsync(next))!.Assignee);
        Assert.Equal(3, (await queue.GetAsync()).OpenTickets[a]);
    }
}
