using System.Diagnostics;
using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Assignment;
using Crm.Service.Grains.Sla;

namespace Crm.Service.Benchmarks;

/// <summary>
/// Routing/SLA arithmetic in-process (issue 20): assignment decisions/s of one team's board (the pure core of
/// TeamQueueGrain) with N agents and T queued tickets, least loaded against round robin on the same board; and SLA
/// due-time calculations/s on a business-hours calendar with holidays (Europe/Berlin, Mon-Fri 09-17, DST) against the
/// 24/7 calendar. Each figure is printed with its ratio to the baseline measured in the same run.
/// </summary>
internal static class Routing
{
    public static void Run(int agents, int tickets, int calculations, int rounds)
    {
        Console.WriteLine($"routing: {agents} agents x {tickets} queued tickets, {calculations} SLA due times, {rounds} rounds (median)");
        var roundRobin = Median(rounds, () => Assign(AssignmentPolicy.RoundRobin, agents, tickets));
        var leastLoaded = Median(rounds, () => Assign(AssignmentPolicy.LeastLoaded, agents, tickets));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"assignment, round robin (baseline): {roundRobin:N0} decisions/s"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"assignment, least loaded: {leastLoaded:N0} decisions/s ({leastLoaded / roundRobin:0.00}x round robin)"));

        var business = BusinessCalendar.From(new BusinessCalendarDefinition
        {
            Id = "berlin",
            Name = "Berlin office",
            TimeZone = "Europe/Berlin",
            Hours = [.. new[] { DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday }
                .Select(d => new BusinessHoursRange(d, TimeSpan.FromHours(9), TimeSpan.FromHours(17)))],
            Holidays = [.. new[] { "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-01", "2026-05-14", "2026-05-25", "2026-10-03", "2026-12-24", "2026-12-25", "2026-12-26", "2026-12-31",
                "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-01", "2027-05-06", "2027-05-17", "2027-10-03", "2027-12-24", "2027-12-25" }
                .Select(d => DateOnly.Parse(d, CultureInfo.InvariantCulture))],
        });
        var always = BusinessCalendar.AlwaysOpen;
        var random = new Random(20);
        var origin = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        // Starts spread over two years (both DST changes, every holiday), targets from 30 minutes to 3 business days.
        var work = Enumerable.Range(0, calculations)
            .Select(_ => (origin.AddMinutes(random.Next(0, 2 * 365 * 24 * 60)), TimeSpan.FromMinutes(30 * random.Next(1, 49)))).ToArray();
        var alwaysRate = Median(rounds, () => DueTimes(always, work));
        var businessRate = Median(rounds, () => DueTimes(business, work));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"SLA due time, 24/7 calendar (baseline): {alwaysRate:N0} calculations/s"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"SLA due time, business hours + holidays: {businessRate:N0} calculations/s ({businessRate / alwaysRate:0.00}x 24/7)"));
    }

    private static double Median(int rounds, Func<double> measure)
    {
        measure(); // warm-up (JIT, tiered compilation)
        var figures = Enumerable.Range(0, rounds).Select(_ => measure()).Order().ToList();
        return figures[figures.Count / 2];
    }

    /// <summary>One team, every agent online with room for an even share, every ticket queued (a tenth needing a skill
    /// a third of the agents have): one dispatch assigns them all. Decisions per second.</summary>
    private static double Assign(AssignmentPolicy policy, int agents, int tickets)
    {
        var board = new AssignmentBoard();
        var capacity = tickets / agents + 1;
        board.Configure(new TeamAssignmentSettings
        {
            Policy = policy,
            Agents = [.. Enumerable.Range(0, agents).Select(i => new AgentCapacity($"agent-{i}", i % 3 == 0 ? ["de"] : [], capacity))],
        });
        for (var i = 0; i < agents; i++)
            board.SetOnline($"agent-{i}", true);
        var since = new DateTimeOffset(2026, 11, 24, 0, 0, 0, TimeSpan.Zero);
        for (var n = 1; n <= tickets; n++)
            board.Enqueue(new QueuedTicket(n, (TicketPriority)(n % 4), since.AddSeconds(n), n % 10 == 0 ? ["de"] : []));
        var watch = Stopwatch.StartNew();
        var decisions = 0;
        // Dispatch assigns what it can; the loop ends when a pass assigns nothing (skilled agents full).
        for (var made = board.Dispatch().Count; made > 0; made = board.Dispatch().Count)
            decisions += made;
        watch.Stop();
        if (decisions < tickets * 9 / 10)
            throw new InvalidOperationException($"Only {decisions} of {tickets} tickets were assigned.");
        return decisions / watch.Elapsed.TotalSeconds;
    }

    private static double DueTimes(BusinessCalendar calendar, (DateTimeOffset Start, TimeSpan Amount)[] work)
    {
        var watch = Stopwatch.StartNew();
        long check = 0;
        foreach (var (start, amount) in work)
            check += calendar.Add(start, amount).UtcTicks & 1;
        watch.Stop();
        GC.KeepAlive(check);
        return work.Length / watch.Elapsed.TotalSeconds;
    }
}
