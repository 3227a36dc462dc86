namespace Crm.Service.Contracts;

/// <summary>Opening hours on one day of the week, in the calendar's local time. <see cref="Close"/> may be 24:00.</summary>
[GenerateSerializer, Immutable, Alias("crm.BusinessHoursRange")]
public sealed record BusinessHoursRange(
    [property: Id(0)] DayOfWeek Day,
    [property: Id(1)] TimeSpan Open,
    [property: Id(2)] TimeSpan Close);

/// <summary>A business-hours calendar: an IANA time zone, weekly hours and holidays (whole local days).</summary>
[GenerateSerializer, Immutable, Alias("crm.BusinessCalendarDefinition")]
public sealed record BusinessCalendarDefinition
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public required string Name { get; init; }
    /// <summary>IANA id such as "Europe/Berlin".</summary>
    [Id(2)] public required string TimeZone { get; init; }
    [Id(3)] public IReadOnlyList<BusinessHoursRange> Hours { get; init; } = [];
    [Id(4)] public IReadOnlyList<DateOnly> Holidays { get; init; } = [];

    /// <summary>Round the clock, every day, UTC: what a policy without a calendar counts in.</summary>
    public static BusinessCalendarDefinition AlwaysOpen { get; } = new()
    {
        Id = "always",
        Name = "24/7",
        TimeZone = "UTC",
        Hours = [.. Enum.GetValues<DayOfWeek>().Select(d => new BusinessHoursRange(d, TimeSpan.Zero, TimeSpan.FromHours(24)))],
    };
}

/// <summary>The targets of one priority; a null target is not measured.</summary>
[GenerateSerializer, Immutable, Alias("crm.SlaTarget")]
public sealed record SlaTarget(
    [property: Id(0)] TicketPriority Priority,
    [property: Id(1)] TimeSpan? FirstResponse,
    [property: Id(2)] TimeSpan? NextResponse,
    [property: Id(3)] TimeSpan? Resolution);

/// <summary>What happens when a clock is breached for <see cref="After"/> (0 = at the breach). Each level fires once per clock.</summary>
[GenerateSerializer, Immutable, Alias("crm.EscalationLevel")]
public sealed record EscalationLevel
{
    [Id(0)] public TimeSpan After { get; init; }
    [Id(1)] public bool NotifyAssignee { get; init; } = true;
    [Id(2)] public bool NotifySupervisors { get; init; }
    [Id(3)] public TicketPriority? RaisePriorityTo { get; init; }
    [Id(4)] public string? ReassignToTeam { get; init; }
    [Id(5)] public string? AddTag { get; init; }
}

/// <summary>Which tickets a routing rule or an SLA policy applies to. Empty lists match anything; all given lists must match.</summary>
[GenerateSerializer, Immutable, Alias("crm.TicketConditions")]
public sealed record TicketConditions
{
    [Id(0)] public IReadOnlyList<ChannelKind> Channels { get; init; } = [];
    [Id(1)] public IReadOnlyList<string> ChannelAccounts { get; init; } = [];
    /// <summary>Any one of these tags on the customer.</summary>
    [Id(2)] public IReadOnlyList<string> CustomerTags { get; init; } = [];
    /// <summary>The customer's "segment" custom field is one of these.</summary>
    [Id(3)] public IReadOnlyList<string> Segments { get; init; } = [];
    [Id(4)] public IReadOnlyList<string> Languages { get; init; } = [];
    /// <summary>Any one of these words in the subject or the first message (case-insensitive).</summary>
    [Id(5)] public IReadOnlyList<string> Keywords { get; init; } = [];
    [Id(6)] public IReadOnlyList<TicketPriority> Priorities { get; init; } = [];
    [Id(7)] public IReadOnlyList<string> Teams { get; init; } = [];
    /// <summary>Local time of day window [From, To) in <see cref="TimeZone"/> (UTC when null); To &lt; From wraps midnight.</summary>
    [Id(8)] public TimeSpan? From { get; init; }
    [Id(9)] public TimeSpan? To { get; init; }
    [Id(10)] public string? TimeZone { get; init; }
    /// <summary>A business-hours calendar: its zone is the time-of-day window's zone when <see cref="TimeZone"/> is
    /// null, and <see cref="InBusinessHours"/> checks its open hours.</summary>
    [Id(11)] public string? CalendarId { get; init; }
    /// <summary>true: only while <see cref="CalendarId"/>'s calendar is open; false: only while it is closed (nights,
    /// weekends, holidays).</summary>
    [Id(12)] public bool? InBusinessHours { get; init; }
}

/// <summary>An SLA policy: the first one (by <see cref="Order"/>) whose conditions match a ticket applies to it.</summary>
[GenerateSerializer, Immutable, Alias("crm.SlaPolicy")]
public sealed record SlaPolicy
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public required string Name { get; init; }
    [Id(2)] public int Order { get; init; }
    [Id(3)] public TicketConditions Conditions { get; init; } = new();
    /// <summary>A calendar id; null counts round the clock.</summary>
    [Id(4)] public string? CalendarId { get; init; }
    [Id(5)] public IReadOnlyList<SlaTarget> Targets { get; init; } = [];
    /// <summary>The warning fires at this fraction of a target (0.8 = 80%); null turns warnings off.</summary>
    [Id(6)] public double? WarningAt { get; init; } = 0.8;
    [Id(7)] public IReadOnlyList<EscalationLevel> Escalations { get; init; } = [new EscalationLevel { NotifySupervisors = true }];
}

/// <summary>What one SLA clock measures.</summary>
public enum SlaMetric
{
    FirstResponse = 0,
    NextResponse = 1,
    Resolution = 2,
}

/// <summary>One clock of a ticket as agents see it.</summary>
[GenerateSerializer, Immutable, Alias("crm.SlaClockStatus")]
public sealed record SlaClockStatus(
    [property: Id(0)] SlaMetric Metric,
    [property: Id(1)] TimeSpan Target,
    [property: Id(2)] TimeSpan Elapsed,
    [property: Id(3)] bool Running,
    [property: Id(4)] DateTimeOffset? DueAt,
    [property: Id(5)] DateTimeOffset? StoppedAt,
    [property: Id(6)] bool Breached);

/// <summary>Something an SLA clock did: "warning" or "breach-{level}", at the (clock) time it acted.</summary>
[GenerateSerializer, Immutable, Alias("crm.SlaEvent")]
public sealed record SlaEvent(
    [property: Id(0)] SlaMetric Metric,
    [property: Id(1)] string Milestone,
    [property: Id(2)] DateTimeOffset DueAt,
    [property: Id(3)] DateTimeOffset FiredAt);

[GenerateSerializer, Immutable, Alias("crm.SlaStatus")]
public sealed record SlaStatus(
    [property: Id(0)] long Ticket,
    [property: Id(1)] string? PolicyId,
    [property: Id(2)] IReadOnlyList<SlaClockStatus> Clocks,
    [property: Id(3)] IReadOnlyList<SlaEvent> Events,
    /// <summary>The next warning or escalation this ticket's reminder waits for.</summary>
    [property: Id(4)] DateTimeOffset? NextDueAt);

/// <summary>The SLA clocks of one ticket, keyed by the ticket number. Kept in step by the change feed ("sla" consumer);
/// a durable reminder fires warnings and escalations, each once, also across restarts.</summary>
public interface ISlaClockGrain : IGrainWithIntegerKey
{
    /// <summary>Re-reads the ticket and its policy, moves the clocks, fires what is due and sets the reminder.</summary>
    Task<SlaStatus> SyncAsync(CancellationToken cancellationToken = default);

    [Orleans.Concurrency.ReadOnly]
    Task<SlaStatus> GetAsync();
}
