namespace Crm.Service.Contracts;

/// <summary>A routing rule: rules are evaluated in <see cref="Order"/> (then id) when a ticket is created, and the
/// first enabled rule whose conditions match sets the ticket's team and priority and adds its tags.</summary>
[GenerateSerializer, Immutable, Alias("crm.RoutingRule")]
public sealed record RoutingRule
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public required string Name { get; init; }
    [Id(2)] public int Order { get; init; }
    [Id(3)] public bool Enabled { get; init; } = true;
    [Id(4)] public TicketConditions Conditions { get; init; } = new();
    /// <summary>The team the ticket goes to (only when nobody gave it a team or an assignee first).</summary>
    [Id(5)] public string? Team { get; init; }
    [Id(6)] public TicketPriority? Priority { get; init; }
    [Id(7)] public IReadOnlyList<string> AddTags { get; init; } = [];
}

/// <summary>What routing did to one ticket: the rule that matched (none: no rule did) and when.</summary>
[GenerateSerializer, Immutable, Alias("crm.TicketRouting")]
public sealed record TicketRouting
{
    [Id(0)] public string? RuleId { get; init; }
    [Id(1)] public TicketChange? Change { get; init; }
    [Id(2)] public DateTimeOffset DecidedAt { get; init; }
    /// <summary>The change is on the ticket (or was refused: see <see cref="Outcome"/>). A decision stored but not yet
    /// applied is applied (again) on the next call.</summary>
    [Id(3)] public bool Applied { get; init; }
    /// <summary>Why the decision is not (fully) on the ticket: the ticket was merged, or it refused part of the change.</summary>
    [Id(4)] public string? Outcome { get; init; }
    /// <summary>Not decided yet: a keyword rule waits for the ticket's first message (at most a minute after the ticket
    /// was opened). The ticket is routed when the message arrives or the wait ends, and then handed to its SLA clock and
    /// team queue; until then the consumers leave it alone.</summary>
    [Id(5)] public bool Waiting { get; init; }
    /// <summary>The ticket's priority when the decision was made: a retry sets the rule's priority only while the ticket
    /// still has it (a person's later choice wins).</summary>
    [Id(6)] public TicketPriority? PriorityBefore { get; init; }
}

/// <summary>Routes one ticket (key: ticket number) through the routing rules, once: the decision is stored before
/// it is applied, and a repeated call (a redelivered change, another consumer) returns the stored decision.</summary>
public interface ITicketRoutingGrain : IGrainWithIntegerKey
{
    /// <summary>Routes the ticket if it was not routed yet; null when the ticket does not exist.</summary>
    Task<TicketRouting?> RouteAsync(CancellationToken cancellationToken = default);

    /// <summary>Routes a ticket that waits for its first message (<see cref="TicketRouting.Waiting"/>) now that a message
    /// of it arrived, then hands it to its SLA clock and team queue; does nothing for any other ticket.</summary>
    Task ResumeAsync(CancellationToken cancellationToken = default);
}
