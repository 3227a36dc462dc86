namespace Crm.Service.Contracts;

[GenerateSerializer, Immutable, Alias("crm.TicketSnapshot")]
public sealed record TicketSnapshot
{
    [Id(0)] public required long Number { get; init; }
    [Id(1)] public required string Subject { get; init; }
    [Id(2)] public required TicketStatus Status { get; init; }
    [Id(3)] public required TicketPriority Priority { get; init; }
    [Id(4)] public string? Team { get; init; }
    [Id(5)] public string? Assignee { get; init; }
    [Id(6)] public IReadOnlyList<string> Tags { get; init; } = [];
    [Id(7)] public required Guid CustomerId { get; init; }
    [Id(8)] public IReadOnlyList<Guid> ConversationIds { get; init; } = [];
    [Id(9)] public required DateTimeOffset CreatedAt { get; init; }
    [Id(10)] public required DateTimeOffset UpdatedAt { get; init; }
    [Id(11)] public DateTimeOffset? ResolvedAt { get; init; }
    [Id(12)] public DateTimeOffset? ClosedAt { get; init; }
    [Id(13)] public long? FollowUpOf { get; init; }
    [Id(14)] public long? MergedInto { get; init; }
    [Id(15)] public DateTimeOffset? FirstResponseAt { get; init; }
    [Id(16)] public DateTimeOffset? LastCustomerMessageAt { get; init; }
    /// <summary>The last reply an agent sent (the next-response SLA clock stops here).</summary>
    [Id(17)] public DateTimeOffset? LastAgentReplyAt { get; init; }
}

/// <summary>A partial change to a ticket; null fields are left as they are.</summary>
[GenerateSerializer, Immutable, Alias("crm.TicketChange")]
public sealed record TicketChange
{
    [Id(0)] public TicketStatus? Status { get; init; }
    [Id(1)] public TicketPriority? Priority { get; init; }
    [Id(2)] public IReadOnlyList<string>? Tags { get; init; }
    /// <summary>An empty string clears the assignee.</summary>
    [Id(3)] public string? Assignee { get; init; }
    /// <summary>An empty string clears the team.</summary>
    [Id(4)] public string? Team { get; init; }
    [Id(5)] public string? Subject { get; init; }
    /// <summary>Tags added to (and <see cref="RemoveTags"/> removed from) the ticket's tags as they are when the change
    /// runs, so a caller that read the tags earlier never drops one added meanwhile (unlike <see cref="Tags"/>).</summary>
    [Id(6)] public IReadOnlyList<string>? AddTags { get; init; }
    [Id(7)] public IReadOnlyList<string>? RemoveTags { get; init; }
    /// <summary>Makes the change idempotent: a second change with the same id changes nothing (a retried macro must not
    /// put its values back over a colleague's newer ones). Scope it to the caller.</summary>
    [Id(8)] public string? RequestId { get; init; }
}

/// <summary>What the conversation grain asks of a ticket when a customer message arrives.</summary>
[GenerateSerializer, Immutable, Alias("crm.InboundNotice")]
public sealed record InboundNotice(
    [property: Id(0)] Guid MessageId,
    [property: Id(1)] Guid ConversationId,
    [property: Id(2)] DateTimeOffset ReceivedAt,
    /// <summary>The conversation's customer: a ticket takes a conversation it does not list only from its own customer.</summary>
    [property: Id(3)] Guid CustomerId,
    /// <summary>The message's dedupe key, which a ticket checks against the store before a message changes its state.</summary>
    [property: Id(4)] string ChannelAccountId,
    [property: Id(5)] string ExternalMessageId,
    /// <summary>A machine wrote it (see <see cref="InboundMessage.AutomaticReason"/>): it changes no ticket status.</summary>
    [property: Id(6)] bool Automatic = false,
    /// <summary>The conversation is of someone the ticket's thread copied in (an email Cc) whom the connector found on
    /// the ticket (their identity key): the ticket takes it although its customer is another (see <see cref="InboundMessage.JoinTicket"/>).</summary>
    [property: Id(7)] string? Participant = null);

public enum InboundRoutingKind
{
    /// <summary>The ticket took the message (reopening it if it was resolved within the window).</summary>
    Accepted = 0,
    /// <summary>The ticket is closed or resolved too long ago: open a follow-up ticket.</summary>
    NeedsFollowUp = 1,
    /// <summary>The ticket was merged; route to <see cref="InboundRouting.TicketNumber"/> instead.</summary>
    MergedInto = 2,
    /// <summary>No such ticket is stored (a crash between allocating the number and opening it): open it now.</summary>
    Missing = 3,
    /// <summary>The conversation is not one of this ticket's and belongs to another customer (a number the conversation
    /// reserved but never used, now taken by someone else's ticket): open a new ticket under a new number.</summary>
    Foreign = 4,
    /// <summary>The message is already stored (a redelivery the conversation's memory did not know): change nothing.</summary>
    Duplicate = 5,
}

/// <param name="ActivityAt">Set when the ticket took the message without a change of its own to store: the conversation
/// then writes the ticket's activity time in the same commit as the message, so both land atomically in one fsync.</param>
[GenerateSerializer, Immutable, Alias("crm.InboundRouting")]
public sealed record InboundRouting(
    [property: Id(0)] InboundRoutingKind Kind,
    [property: Id(1)] long TicketNumber,
    [property: Id(2)] DateTimeOffset? ActivityAt = null);

/// <summary>What a new ticket starts with.</summary>
[GenerateSerializer, Immutable, Alias("crm.TicketOpening")]
public sealed record TicketOpening
{
    [Id(0)] public required string Subject { get; init; }
    [Id(1)] public required Guid CustomerId { get; init; }
    [Id(2)] public required Guid ConversationId { get; init; }
    [Id(3)] public required string ConversationKey { get; init; }
    [Id(4)] public required string Actor { get; init; }
    [Id(5)] public long? FollowUpOf { get; init; }
    /// <summary>For a split: the message that moves into the new ticket.</summary>
    [Id(6)] public Guid? SplitMessageId { get; init; }
    [Id(7)] public long? SplitFrom { get; init; }
    /// <summary>The team the new ticket starts in (a split keeps its source's, so a restricted team's message stays
    /// restricted).</summary>
    [Id(8)] public string? Team { get; init; }
    [Id(9)] public TicketPriority? Priority { get; init; }
}

