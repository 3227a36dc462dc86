using Crm.Service.Contracts;

namespace Crm.Service.Grains.Sla;

/// <summary>A ticket's SLA clocks as stored (one JSON document per ticket).</summary>
public sealed record SlaClocks
{
    public string? PolicyId { get; init; }
    public IReadOnlyDictionary<SlaMetric, SlaClockValue> Clocks { get; init; } = new Dictionary<SlaMetric, SlaClockValue>();
    /// <summary>Milestones already fired (<see cref="SlaRules.Key"/>): each fires once per clock spell, across restarts.</summary>
    public IReadOnlyList<string> Fired { get; init; } = [];
    public IReadOnlyList<SlaEvent> Events { get; init; } = [];
}

/// <summary>A warning or an escalation level of one clock that is due at <see cref="At"/>.</summary>
public sealed record SlaMilestone(SlaMetric Metric, string Key, string Name, DateTimeOffset At, EscalationLevel? Level);

/// <summary>The SLA rules, pure: how a ticket's state moves its clocks, and which milestones are due.</summary>
public static class SlaRules
{
    public const string Warning = "warning";

    /// <summary>A milestone's key includes the spell's start, so the next-response clock of a later customer message
    /// warns again, while a restart or a repeated tick of the same spell never does.</summary>
    public static string Key(SlaClockValue clock, string milestone) => $"{clock.Metric}@{clock.StartedAt.UtcTicks}:{milestone}";

    public static SlaClocks Sync(SlaClocks state, TicketSnapshot ticket, SlaPolicy? policy, BusinessCalendar calendar, DateTimeOffset now)
    {
        var clocks = new Dictionary<SlaMetric, SlaClockValue>(state.Clocks);
        // Changes are stamped with the ticket's own change time, so a late sync still pauses and stops where it happened.
        var at = ticket.UpdatedAt < now ? ticket.UpdatedAt : now;
        var done = ticket.Status is TicketStatus.Resolved or TicketStatus.Closed || ticket.MergedInto is not null;
        var paused = ticket.Status is TicketStatus.Pending or TicketStatus.OnHold;
        var targets = policy?.Targets.FirstOrDefault(t => t.Priority == ticket.Priority);

        if (targets?.FirstResponse is { } firstResponse && !clocks.ContainsKey(SlaMetric.FirstResponse))
            clocks[SlaMetric.FirstResponse] = SlaClockValue.Start(SlaMetric.FirstResponse, firstResponse, ticket.CreatedAt);
        if (clocks.TryGetValue(SlaMetric.FirstResponse, out var first) && (ticket.FirstResponseAt is not null || done))
            clocks[SlaMetric.FirstResponse] = first.Stop(calendar, ticket.FirstResponseAt ?? at);

        if (targets?.Resolution is { } resolution && !clocks.ContainsKey(SlaMetric.Resolution))
            clocks[SlaMetric.Resolution] = SlaClockValue.Start(SlaMetric.Resolution, resolution, ticket.CreatedAt);
        if (clocks.TryGetValue(SlaMetric.Resolution, out var resolve))
        {
            if (done)
                clocks[SlaMetric.Resolution] = resolve.Stop(calendar, ticket.ResolvedAt ?? ticket.ClosedAt ?? at);
            else if (resolve.StoppedAt is not null)
                // Reopened: the clock runs on from what it had consumed (its milestones keep their keys: no second warning).
                clocks[SlaMetric.Resolution] = resolve with { StoppedAt = null, RunningSince = at };
        }

        // Next response: from a customer message that came after the agents' last reply, until the next reply.
        var answeredAt = ticket.LastAgentReplyAt ?? ticket.FirstResponseAt;
        if (answeredAt is not null && ticket.LastCustomerMessageAt is { } asked && asked > answeredAt)
        {
            // A running clock keeps the first unanswered message: a customer who nudges waits longer, not shorter.
            if (targets?.NextResponse is { } nextResponse
                && (!clocks.TryGetValue(SlaMetric.NextResponse, out var next) || (next.StoppedAt is not null && next.StartedAt != asked)))
                clocks[SlaMetric.NextResponse] = SlaClockValue.Start(SlaMetric.NextResponse, nextResponse, asked);
        }
        if (clocks.TryGetValue(SlaMetric.NextResponse, out var waiting) && waiting.StoppedAt is null
            && ((ticket.LastAgentReplyAt is { } replied && replied >= waiting.StartedAt) || done))
            clocks[SlaMetric.NextResponse] = waiting.Stop(calendar, ticket.LastAgentReplyAt is { } r && r >= waiting.StartedAt ? r : at);

        foreach (var (metric, clock) in clocks.ToList())
        {
            if (clock.StoppedAt is not null)
                continue;
            var moved = paused ? clock.Pause(calendar, at) : clock.Resume(at);
            // A priority change moves the target; the time consumed stays.
            var target = metric switch
            {
                SlaMetric.FirstResponse => targets?.FirstResponse,
                SlaMetric.NextResponse => targets?.NextResponse,
                _ => targets?.Resolution,
            };
            if (target is { } wanted && wanted != moved.Target)
                moved = moved with { Target = wanted };
            clocks[metric] = moved;
        }
        return state with { PolicyId = policy?.Id ?? state.PolicyId, Clocks = clocks };
    }

    /// <summary>Every milestone of the running clocks that has not fired yet, earliest first.</summary>
    public static IReadOnlyList<SlaMilestone> Pending(SlaClocks state, SlaPolicy? policy, BusinessCalendar calendar)
    {
        if (policy is null)
            return [];
        var fired = state.Fired.ToHashSet(StringComparer.Ordinal);
        var result = new List<SlaMilestone>();
        foreach (var clock in state.Clocks.Values.Where(c => c.Running))
        {
            if (policy.WarningAt is { } fraction && clock.MomentOf(calendar, fraction) is { } warnAt && !fired.Contains(Key(clock, Warning)))
                result.Add(new SlaMilestone(clock.Metric, Key(clock, Warning), Warning, warnAt, null));
            for (var i = 0; i < policy.Escalations.Count; i++)
            {
                var name = $"breach-{i + 1}";
                if (clock.BreachedFor(calendar, policy.Escalations[i].After) is { } breachAt && !fired.Contains(Key(clock, name)))
                    result.Add(new SlaMilestone(clock.Metric, Key(clock, name), name, breachAt, policy.Escalations[i]));
            }
        }
        return [.. result.OrderBy(m => m.At)];
    }

    /// <summary>The ticket change an escalation level makes, or null when it changes nothing (only notifies).</summary>
    public static TicketChange? ChangeFor(EscalationLevel level, TicketSnapshot ticket)
    {
        var priority = level.RaisePriorityTo is { } raise && raise > ticket.Priority ? raise : (TicketPriority?)null;
        var reassign = level.ReassignToTeam is { } team && team != ticket.Team;
        var tag = level.AddTag is { } add && !ticket.Tags.Contains(add, StringComparer.OrdinalIgnoreCase);
        if (priority is null && !reassign && !tag)
            return null;
        return new TicketChange
        {
            Priority = priority,
            Team = reassign ? level.ReassignToTeam : null,
            // A ticket moved to an escalation team waits in that team's queue rather than with its old assignee.
            Assignee = reassign ? "" : null,
            Tags = tag ? [.. ticket.Tags, level.AddTag!] : null,
        };
    }
}
