namespace Crm.Service.Contracts;

/// <summary>"Follow up at" on a ticket: at <see cref="At"/> a pending ticket reopens and the agent is notified.</summary>
[GenerateSerializer, Immutable, Alias("crm.TicketFollowUp")]
public sealed record TicketFollowUp
{
    [Id(0)] public required DateTimeOffset At { get; init; }
    /// <summary>Who set it (the actor: a console user id or "apikey:name"); notified with the assignee.</summary>
    [Id(1)] public required string SetBy { get; init; }
    [Id(2)] public string? Note { get; init; }
    [Id(3)] public DateTimeOffset SetAt { get; init; }
    /// <summary>When it acted (a late reminder acts when the host is back); null while it waits.</summary>
    [Id(4)] public DateTimeOffset? FiredAt { get; init; }
    /// <summary>It found the ticket pending and reopened it.</summary>
    [Id(5)] public bool Reopened { get; init; }
}

/// <summary>The follow-up reminder of one ticket (key: ticket number), on a durable reminder that survives restarts.</summary>
public interface ITicketFollowUpGrain : IGrainWithIntegerKey
{
    /// <summary>Sets (or moves) the follow-up; a time already past acts at once.</summary>
    /// <exception cref="DomainException">(NotFound) no such ticket; (Invalid) a closed or merged ticket, or a time
    /// more than <c>MaxAhead</c> away.</exception>
    Task<TicketFollowUp> SetAsync(DateTimeOffset at, string actor, string? note, CancellationToken cancellationToken = default);

    /// <summary>Removes a follow-up; false when none was set.</summary>
    Task<bool> ClearAsync(CancellationToken cancellationToken = default);

    [Orleans.Concurrency.ReadOnly]
    Task<TicketFollowUp?> GetAsync();
}

/// <summary>A follow-up reminder reached someone's attention: the people to tell, by actor, user id or email. When none
/// of them is a console person (an API key recorded it), the ticket's assignee, else <see cref="Team"/>'s (or the
/// ticket's team's) members, else the admins are told instead. The host stores it per person (idempotent per
/// <see cref="Cause"/>, the milestone that caused it) and pushes it live to those it was new for.</summary>
[GenerateSerializer, Immutable, Alias("crm.FollowUpNotice")]
public sealed record FollowUpNotice(
    [property: Id(0)] string Kind,
    [property: Id(1)] long? Ticket,
    [property: Id(2)] Guid? CustomerId,
    [property: Id(3)] IReadOnlyList<string> People,
    [property: Id(4)] bool NotifySupervisors,
    [property: Id(5)] string? Team = null,
    [property: Id(6)] string? Cause = null);
