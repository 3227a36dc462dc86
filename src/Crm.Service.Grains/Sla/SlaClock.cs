using Crm.Service.Contracts;

namespace Crm.Service.Grains.Sla;

/// <summary>
/// One SLA clock as a value: the target, the business time consumed in earlier running spells, and since when it runs
/// (null while paused or stopped). Pauses (pending, on hold) simply end a spell, so the arithmetic never has to
/// replay a history. Every method returns a new clock.
/// </summary>
[GenerateSerializer, Immutable, Alias("crm.SlaClockValue")]
public sealed record SlaClockValue
{
    [Id(0)] public required SlaMetric Metric { get; init; }
    [Id(1)] public required TimeSpan Target { get; init; }
    [Id(2)] public TimeSpan Consumed { get; init; }
    [Id(3)] public DateTimeOffset? RunningSince { get; init; }
    /// <summary>Set when the clock's goal was met (the response sent, the ticket resolved); the clock no longer runs.</summary>
    [Id(4)] public DateTimeOffset? StoppedAt { get; init; }
    /// <summary>When the clock was started, for the record.</summary>
    [Id(5)] public required DateTimeOffset StartedAt { get; init; }

    public bool Running => RunningSince is not null;

    public static SlaClockValue Start(SlaMetric metric, TimeSpan target, DateTimeOffset at, bool paused = false) =>
        new() { Metric = metric, Target = target, StartedAt = at, RunningSince = paused ? null : at };

    /// <summary>Business time consumed up to <paramref name="at"/>.</summary>
    public TimeSpan Elapsed(BusinessCalendar calendar, DateTimeOffset at) =>
        Consumed + (RunningSince is { } since ? calendar.Between(since, at) : TimeSpan.Zero);

    public SlaClockValue Pause(BusinessCalendar calendar, DateTimeOffset at) =>
        RunningSince is null ? this : this with { Consumed = Elapsed(calendar, at), RunningSince = null };

    public SlaClockValue Resume(DateTimeOffset at) =>
        RunningSince is not null || StoppedAt is not null ? this : this with { RunningSince = at };

    public SlaClockValue Stop(BusinessCalendar calendar, DateTimeOffset at) =>
        StoppedAt is not null ? this : Pause(calendar, at) with { StoppedAt = at };

    /// <summary>The instant the clock reaches <paramref name="fraction"/> of its target (1 = the breach), or null while it
    /// does not run. A moment already passed is the instant the running spell began (it is due at once).</summary>
    public DateTimeOffset? MomentOf(BusinessCalendar calendar, double fraction)
    {
        if (RunningSince is not { } since)
            return null;
        var left = TimeSpan.FromTicks((long)(Target.Ticks * fraction)) - Consumed;
        return left <= TimeSpan.Zero ? since : calendar.Add(since, left);
    }

    /// <summary>The instant the clock reaches its target plus <paramref name="after"/> of further business time.</summary>
    public DateTimeOffset? BreachedFor(BusinessCalendar calendar, TimeSpan after)
    {
        if (RunningSince is not { } since)
            return null;
        var left = Target + after - Consumed;
        return left <= TimeSpan.Zero ? since : calendar.Add(since, left);
    }

    public DateTimeOffset? DueAt(BusinessCalendar calendar) => BreachedFor(calendar, TimeSpan.Zero);

    /// <summary>Whether the target was exceeded by <paramref name="at"/> (for a stopped clock: before it stopped).</summary>
    public bool IsBreached(BusinessCalendar calendar, DateTimeOffset at) => Elapsed(calendar, at) >= Target;
}
