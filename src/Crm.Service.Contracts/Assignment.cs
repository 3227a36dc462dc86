namespace Crm.Service.Contracts;

public enum AssignmentPolicy
{
    /// <summary>Tickets wait in the team's queue until someone takes them.</summary>
    Manual = 0,
    /// <summary>The eligible agent who was given work longest ago gets the next ticket.</summary>
    RoundRobin = 1,
    /// <summary>The eligible agent with the fewest open tickets whose SLA clock runs (not pending or on hold) gets the
    /// next ticket (ties: longest ago).</summary>
    LeastLoaded = 2,
}

/// <summary>An agent of a team as assignment sees them: skills (languages, products), how many open tickets they take
/// and, of those, how many web chats at once (null: no separate limit; a chat counts against both).</summary>
[GenerateSerializer, Immutable, Alias("crm.AgentCapacity")]
public sealed record AgentCapacity(
    [property: Id(0)] string UserId,
    [property: Id(1)] IReadOnlyList<string> Skills,
    [property: Id(2)] int MaxOpenTickets = 20,
    [property: Id(3)] int? MaxConcurrentChats = null);

/// <summary>A team's assignment settings (kept with the team: <c>/api/v1/admin/teams/{id}/assignment</c>).</summary>
[GenerateSerializer, Immutable, Alias("crm.TeamAssignmentSettings")]
public sealed record TeamAssignmentSettings
{
    [Id(0)] public AssignmentPolicy Policy { get; init; } = AssignmentPolicy.Manual;
    [Id(1)] public IReadOnlyList<AgentCapacity> Agents { get; init; } = [];
    /// <summary>An agent offline this long gets their not-yet-started tickets (status New) put back in the queue; null keeps them.</summary>
    [Id(2)] public TimeSpan? ReturnTicketsAfterOffline { get; init; }
    /// <summary>Members who take no work now, with the skills and capacity they had (or were given), kept so that ticking
    /// "Takes work" again restores them (review CR9). The queue ignores this list.</summary>
    [Id(3)] public IReadOnlyList<AgentCapacity> NotTakingWork { get; init; } = [];
}

/// <summary>A ticket waiting in a team's queue; the queue is ordered by priority (highest first), then waiting time.</summary>
[GenerateSerializer, Immutable, Alias("crm.QueuedTicket")]
public sealed record QueuedTicket(
    [property: Id(0)] long Number,
    [property: Id(1)] TicketPriority Priority,
    [property: Id(2)] DateTimeOffset WaitingSince,
    [property: Id(3)] IReadOnlyList<string> Skills,
    /// <summary>A web chat: counts against the agent's concurrent chats too.</summary>
    [property: Id(4)] bool Chat = false);

[GenerateSerializer, Immutable, Alias("crm.TeamQueueSnapshot")]
public sealed record TeamQueueSnapshot(
    [property: Id(0)] string Team,
    [property: Id(1)] AssignmentPolicy Policy,
    [property: Id(2)] IReadOnlyList<QueuedTicket> Waiting,
    /// <summary>Open tickets per agent that this queue knows of.</summary>
    [property: Id(3)] IReadOnlyDictionary<string, int> OpenTickets,
    [property: Id(4)] IReadOnlyList<string> Online,
    /// <summary>Of those, open web chats per agent.</summary>
    [property: Id(5)] IReadOnlyDictionary<string, int>? OpenChats = null);

/// <summary>
/// One team's queue and its assignment decisions, keyed by the team id: the only writer of who gets which of the
/// team's tickets, so a ticket is never given to two agents. Tickets reach it from the change feed ("assignment").
/// </summary>
public interface ITeamQueueGrain : IGrainWithStringKey
{
    Task<TeamQueueSnapshot> ConfigureAsync(TeamAssignmentSettings settings, CancellationToken cancellationToken = default);

    /// <summary>The ticket changed: queue it when it waits for an agent of this team, free capacity when it is done
    /// or left the team, count it when someone took it by hand. Idempotent.</summary>
    Task ObserveAsync(TicketSnapshot ticket, CancellationToken cancellationToken = default);

    Task SetOnlineAsync(string userId, bool online, CancellationToken cancellationToken = default);

    [Orleans.Concurrency.ReadOnly]
    Task<TeamQueueSnapshot> GetAsync();
}
