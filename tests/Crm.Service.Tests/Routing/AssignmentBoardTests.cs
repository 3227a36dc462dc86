using Crm.Service.Contracts;
using Crm.Service.Grains.Assignment;

namespace Crm.Service.Tests.Routing;

public sealed class AssignmentBoardTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 2, 8, 0, 0, TimeSpan.Zero);

    private static AssignmentBoard Board(AssignmentPolicy policy, int agents, int capacity = 10_000, params string[][] skills)
    {
        var board = new AssignmentBoard();
        board.Configure(new TeamAssignmentSettings
        {
            Policy = policy,
            Agents = [.. Enumerable.Range(0, agents).Select(i => new AgentCapacity($"a{i}", i < skills.Length ? skills[i] : [], capacity))],
        });
        for (var i = 0; i < agents; i++)
            board.SetOnline($"a{i}", true);
        return board;
    }

    private static QueuedTicket Ticket(long number, TicketPriority priority = TicketPriority.Normal, params string[] skills) =>
        new(number, priority, T0.AddSeconds(number), skills);

    [Fact]
    public void Round_robin_spreads_1000_tickets_over_10_agents_100_each()
    {
        var board = Board(AssignmentPolicy.RoundRobin, 10);
        var decisions = new List<(long Ticket, string Agent)>();
        for (var n = 1; n <= 1000; n++)
        {
            board.Enqueue(Ticket(n));
            decisions.AddRange(board.Dispatch());
        }
        Assert.Equal(1000, decisions.Select(d => d.Ticket).Distinct().Count());
        Assert.All(decisions.GroupBy(d => d.Agent), g => Assert.InRange(g.Count(), 99, 101));
        Assert.Equal(10, decisions.Select(d => d.Agent).Distinct().Count());
        Assert.Empty(board.Waiting);
    }

    [Fact]
    public void Least_loaded_fills_the_emptiest_agent_and_respects_capacity()
    {
        var board = Board(AssignmentPolicy.LeastLoaded, 3, capacity: 4);
        board.Hold(100, "a0");
        board.Hold(101, "a0");
        board.Hold(102, "a1");
        for (var n = 1; n <= 20; n++)
            board.Enqueue(Ticket(n));
        var decisions = board.Dispatch();
        // Capacity 3 × 4 = 12, of which 3 are held: 9 assigned, 11 wait.
        Assert.Equal(9, decisions.Count);
        Assert.Equal(["a2", "a1", "a2"], decisions.Take(3).Select(d => d.Agent));
        Assert.All(board.OpenTickets.Values, open => Assert.Equal(4, open));
        Assert.Equal(11, board.Waiting.Count());
        // A resolved ticket frees capacity: the oldest waiting ticket goes at once.
        board.Forget(100);
        var next = Assert.Single(board.Dispatch());
        Assert.Equal((10L, "a0"), next);
    }

    [Fact]
    public void Queue_order_is_priority_then_waiting_time_and_only_skilled_agents_get_skill_tickets()
    {
        var board = Board(AssignmentPolicy.RoundRobin, 2, capacity: 1, ["de"], []);
        board.SetOnline("a0", false);
        board.SetOnline("a1", false);
        board.Enqueue(Ticket(1, TicketPriority.Normal));
        board.Enqueue(Ticket(2, TicketPriority.Urgent, "de"));
        board.Enqueue(Ticket(3, TicketPriority.Urgent));
        Assert.Equal([2L, 3L, 1L], board.Waiting.Select(t => t.Number));
        Assert.Empty(board.Dispatch());
        board.SetOnline("a1", true);
        // a1 cannot read German: the urgent German ticket waits, the next urgent one goes.
        Assert.Equal([(3L, "a1")], board.Dispatch());
        board.SetOnline("a0", true);
        Assert.Equal([(2L, "a0")], board.Dispatch());
        Assert.Equal([1L], board.Waiting.Select(t => t.Number));
    }

    [Fact]
    public void Presence_changes_mid_stream_only_online_agents_get_work()
    {
        var board = Board(AssignmentPolicy.RoundRobin, 4);
        var counts = new Dictionary<string, int>();
        for (var n = 1; n <= 400; n++)
        {
            if (n == 101)
                board.SetOnline("a3", false);
            if (n == 201)
                board.SetOnline("a3", true);
            if (n == 301)
                board.SetOnline("a0", false);
            board.Enqueue(Ticket(n));
            foreach (var (ticket, agent) in board.Dispatch())
            {
                counts[agent] = counts.GetValueOrDefault(agent) + 1;
                Assert.False(n is > 100 and <= 200 && agent == "a3", $"a3 was offline but got #{ticket}");
                Assert.False(n > 300 && agent == "a0", $"a0 was offline but got #{ticket}");
            }
        }
        Assert.Equal(400, counts.Values.Sum());
        // 1-100 over 4 (25), 101-200 without a3, 201-300 over 4 again (25), 301-400 over a1-a3 (33 or 34).
        Assert.InRange(counts["a3"], 83, 84);
        Assert.InRange(counts["a0"], 83, 84);
    }

    [Fact]
    public void Manual_policy_only_queues()
    {
        var board = Board(AssignmentPolicy.Manual, 2);
        board.Enqueue(Ticket(1));
        Assert.Empty(board.Dispatch());
        board.Hold(1, "a1");
        Assert.Empty(board.Waiting);
        Assert.Equal(1, board.OpenTickets["a1"]);
    }

    [Fact]
    public void Concurrent_chats_cap_web_chats_only_and_least_loaded_counts_tickets_whose_SLA_clock_runs()
    {
        var board = new AssignmentBoard();
        board.Configure(new TeamAssignmentSettings
        {
            Policy = AssignmentPolicy.LeastLoaded,
            Agents = [new AgentCapacity("a0", [], 10, MaxConcurrentChats: 1), new AgentCapacity("a1", [], 10)],
        });
        board.SetOnline("a0", true);
        // a0 holds one chat: a second chat waits for a1, an e-mail still goes to a0 (10 open tickets free).
        board.Enqueue(Ticket(1) with { Chat = true });
        Assert.Equal([(1L, "a0")], board.Dispatch());
        board.Enqueue(Ticket(2) with { Chat = true });
        board.Enqueue(Ticket(3));
        Assert.Equal([(3L, "a0")], board.Dispatch());
        Assert.Equal([2L], board.Waiting.Select(t => t.Number));
        Assert.Equal(1, board.OpenChats["a0"]);
        board.SetOnline("a1", true);
        Assert.Equal([(2L, "a1")], board.Dispatch());

        // a0 has two open tickets, a1 one; a0's two wait on the customer (pending, on hold): their clocks are paused, so
        // a0 is the least loaded, though both still count against a0's capacity.
        board.Hold(1, "a0", chat: true, paused: true);
        board.Hold(3, "a0", paused: true);
        board.Enqueue(Ticket(4));
        Assert.Equal([(4L, "a0")], board.Dispatch());
        Assert.Equal(3, board.OpenTickets["a0"]);
        // The chat cap still counts a paused chat; a chat that ends frees it.
        board.Enqueue(Ticket(5) with { Chat = true });
        Assert.Equal([(5L, "a1")], board.Dispatch());
        board.Forget(1);
        board.Enqueue(Ticket(6) with { Chat = true });
        Assert.Equal([(6L, "a0")], board.Dispatch());
    }
}
