using Crm.Service.Contracts;

// What the REST API and the agent console read. These are the public shapes: they are built from the store's rows
// here, never from grain snapshots, so a change to a grain contract does not change the API. Field names match
// the API's earlier responses (which returned snapshots) wherever the field already existed.

namespace Crm.Service.Infrastructure.Queries;

/// <summary>One page of a list, newest first. <see cref="NextCursor"/> is null on the last page.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextCursor)
{
    public bool HasMore => NextCursor is not null;
}

/// <summary>A ticket as lists and the ticket page show it (one shape for both).</summary>
public sealed record TicketView
{
    public required long Number { get; init; }
    public required string Subject { get; init; }
    public required TicketStatus Status { get; init; }
    public required TicketPriority Priority { get; init; }
    public string? Team { get; init; }
    public string? Assignee { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public required Guid CustomerId { get; init; }
    public string? CustomerName { get; init; }
    public IReadOnlyList<Guid> ConversationIds { get; init; } = [];
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? ResolvedAt { get; init; }
    public DateTimeOffset? ClosedAt { get; init; }
    public long? FollowUpOf { get; init; }
    public long? MergedInto { get; init; }
    public DateTimeOffset? FirstResponseAt { get; init; }
    public DateTimeOffset? LastCustomerMessageAt { get; init; }
}

/// <summary>The ticket with the newest page of its timeline and of its history; the cursors load older entries.</summary>
public sealed record TicketDetailsView(
    TicketView Ticket,
    IReadOnlyList<TimelineEntry> Timeline,
    string? TimelineNextCursor,
    IReadOnlyList<AuditEntryView> History,
    string? HistoryNextCursor);

/// <summary>A message on a ticket: inbound, an agent's reply (with its delivery status) or an internal note.</summary>
public sealed record TimelineEntry
{
    public required Guid Id { get; init; }
    public Guid? ConversationId { get; init; }
    public required long TicketNumber { get; init; }
    public required MessageDirection Direction { get; init; }
    public string? ExternalId { get; init; }
    public required string Author { get; init; }
    public string? Subject { get; init; }
    public string? Text { get; init; }
    public string? Html { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? SentAt { get; init; }
    public DeliveryStatus Delivery { get; init; }
    public string? DeliveryError { get; init; }
    public IReadOnlyList<AttachmentView> Attachments { get; init; } = [];
    /// <summary>Who an email reply copied in (Cc), so colleagues and the audit see who else got the conversation.</summary>
    public IReadOnlyList<string> Cc { get; init; } = [];
    /// <summary>The channel account the message came or went through; <c>phone</c> for a logged call.</summary>
    public string? Channel { get; init; }

    /// <summary>A phone call an agent logged: a message of the phone channel without a conversation (never sent).</summary>
    public bool IsCall => ConversationId is null && Direction != MessageDirection.Note && Channel == PhoneCalls.Channel;

    /// <summary>For an inbound edit, the channel's id of the message it edits: the Telegram connector gives an edit the
    /// external id "{chat id}:{message id}:edit:{16 hex}" (edited_message), so the console links it to the original,
    /// which stays as it was (history kept). Null for anything else: only that exact shape on Telegram counts, because other
    /// channels' ids are chosen by the sender (an email's Message-ID "&lt;a@[x:edit:y]&gt;" is no edit, review CT13).</summary>
    public string? EditOf => Direction == MessageDirection.Inbound && ChannelKind == Contracts.ChannelKind.Telegram ? TelegramEditOf(ExternalId) : null;

    /// <summary>The kind of the conversation's channel (null for notes and calls). An edit counts only on Telegram: the
    /// API connector stores the caller's own message id, which could take the edit shape (review IN2).</summary>
    public ChannelKind? ChannelKind { get; init; }

    public const string EditMarker = ":edit:";

    internal static string? TelegramEditOf(string? externalId)
    {
        var at = externalId?.IndexOf(EditMarker, StringComparison.Ordinal) ?? -1;
        if (externalId is null || at <= 0)
            return null;
        var original = externalId[..at];
        var suffix = externalId.AsSpan(at + EditMarker.Length);
        var colon = original.IndexOf(':', StringComparison.Ordinal);
        return colon > 0
            && long.TryParse(original.AsSpan(0, colon), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out _)
            && long.TryParse(original.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _)
            && suffix.Length == 16 && !suffix.ContainsAnyExcept("0123456789abcdef")
            ? original : null;
    }
}

public sealed record AttachmentView(Guid Id, string FileName, string ContentType, long Length, string Sha256);

public sealed record AuditEntryView(DateTimeOffset At, string Actor, string Action, string? Field, string? OldValue, string? NewValue);

public sealed record CustomerView
{
    public required Guid Id { get; init; }
    public string? Name { get; init; }
    public string? Language { get; init; }
    public string? Organization { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public string? Notes { get; init; }
    public IReadOnlyDictionary<string, string> CustomFields { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<IdentityView> Identities { get; init; } = [];
    public Guid? MergedInto { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
}

public sealed record IdentityView(string Key, IdentityKind Kind, string Value, DateTimeOffset LinkedAt);

/// <summary>Queue filters; null means "any". An empty <see cref="Assignee"/> or <see cref="Team"/> means "none set".</summary>
public sealed record TicketFilter
{
    public TicketStatus? Status { get; init; }
    /// <summary>Any of these statuses (the console's queues: "all open" is New or Open); combined with <see cref="Status"/> when both are set.</summary>
    public IReadOnlyList<TicketStatus>? Statuses { get; init; }
    public string? Assignee { get; init; }
    public string? Team { get; init; }
    public Guid? CustomerId { get; init; }
    public TicketPriority? Priority { get; init; }
    public string? Tag { get; init; }
    /// <summary>A channel account id (e.g. "bridge"): tickets with at least one message on it.</summary>
    public string? Channel { get; init; }
    /// <summary>Tickets of any of these teams (the console's "My teams"); an empty list matches nothing.</summary>
    public IReadOnlyList<string>? AnyOfTeams { get; init; }
    /// <summary>Never tickets of these teams (restricted teams the reader is not a member of).</summary>
    public IReadOnlyList<string>? HiddenTeams { get; init; }
}
