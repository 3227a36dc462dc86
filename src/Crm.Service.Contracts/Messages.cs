namespace Crm.Service.Contracts;

/// <summary>Who sent an inbound message, as the channel names them.</summary>
[GenerateSerializer, Immutable, Alias("crm.SenderIdentity")]
public sealed record SenderIdentity(
    [property: Id(0)] IdentityKind Kind,
    [property: Id(1)] string Value,
    [property: Id(2)] string? DisplayName = null);

[GenerateSerializer, Immutable, Alias("crm.InboundAttachment")]
public sealed record InboundAttachment(
    [property: Id(0)] string FileName,
    [property: Id(1)] string? ContentType,
    [property: Id(2)] byte[] Content);

/// <summary>
/// What every connector hands to the conversation grain. The connector acknowledges its source only
/// after <see cref="IConversationGrain.ReceiveAsync"/> returned: by then the message is durably stored.
/// </summary>
[GenerateSerializer, Immutable, Alias("crm.InboundMessage")]
public sealed record InboundMessage
{
    [Id(0)] public required string ChannelAccountId { get; init; }
    [Id(1)] public required string ThreadKey { get; init; }
    /// <summary>The channel's own id of the message; redelivery with the same id returns the stored message.</summary>
    [Id(2)] public required string ExternalMessageId { get; init; }
    [Id(3)] public required SenderIdentity Sender { get; init; }
    [Id(4)] public required DateTimeOffset SentAt { get; init; }
    [Id(5)] public string? Subject { get; init; }
    [Id(6)] public string? Text { get; init; }
    /// <summary>Untrusted HTML as received; the grain sanitizes it before it is stored.</summary>
    [Id(7)] public string? Html { get; init; }
    [Id(8)] public IReadOnlyList<InboundAttachment> Attachments { get; init; } = [];
    /// <summary>The bytes exactly as the channel delivered them; kept for every inbound message.</summary>
    [Id(9)] public required byte[] RawSource { get; init; }
    [Id(10)] public required string RawContentType { get; init; }
    /// <summary>Set when a machine wrote the message (an auto-reply, a list mail): it is stored on its ticket but never
    /// reopens it or opens a follow-up (see <c>TicketRules.OnCustomerMessage</c>).</summary>
    [Id(11)] public string? AutomaticReason { get; init; }
    /// <summary>Email: the other addresses the mail was sent to (To and Cc, without our own and the sender), stored with
    /// the message; a person named here may later reply into the ticket as a participant.</summary>
    [Id(12)] public IReadOnlyList<string> Cc { get; init; } = [];
    /// <summary>A new conversation that joins this existing ticket instead of opening one: the connector found the sender
    /// copied in on the ticket's thread (an email Cc). Their own customer and conversation, on the customer's ticket.</summary>
    [Id(13)] public long? JoinTicket { get; init; }
}

[GenerateSerializer, Immutable, Alias("crm.IngestResult")]
public sealed record IngestResult(
    [property: Id(0)] Guid MessageId,
    [property: Id(1)] Guid ConversationId,
    [property: Id(2)] long TicketNumber,
    [property: Id(3)] Guid CustomerId,
    [property: Id(4)] bool Duplicate);

[GenerateSerializer, Immutable, Alias("crm.AttachmentInfo")]
public sealed record AttachmentInfo(
    [property: Id(0)] Guid Id,
    [property: Id(1)] string FileName,
    [property: Id(2)] string ContentType,
    [property: Id(3)] long Length,
    [property: Id(4)] string Sha256);

[GenerateSerializer, Immutable, Alias("crm.MessageSnapshot")]
public sealed record MessageSnapshot
{
    [Id(0)] public required Guid Id { get; init; }
    [Id(1)] public Guid? ConversationId { get; init; }
    [Id(2)] public required long TicketNumber { get; init; }
    [Id(3)] public required MessageDirection Direction { get; init; }
    [Id(4)] public string? ExternalId { get; init; }
    [Id(5)] public required string Author { get; init; }
    [Id(6)] public string? Text { get; init; }
    [Id(7)] public string? Html { get; init; }
    [Id(8)] public required DateTimeOffset CreatedAt { get; init; }
    [Id(9)] public DateTimeOffset? SentAt { get; init; }
    [Id(10)] public DeliveryStatus Delivery { get; init; }
    [Id(11)] public string? DeliveryError { get; init; }
    [Id(12)] public IReadOnlyList<AttachmentInfo> Attachments { get; init; } = [];
    /// <summary>An email reply's Cc addresses as the agent gave them (empty otherwise).</summary>
    [Id(13)] public IReadOnlyList<string> Cc { get; init; } = [];
    /// <summary>The channel account of the message; <see cref="PhoneCalls.Channel"/> for a logged call. (Id 20 leaves
    /// room for fields added on other branches.)</summary>
    [Id(20)] public string? Channel { get; init; }
}

/// <summary>An agent's reply; <see cref="RequestId"/> makes a retried request return the first reply.</summary>
[GenerateSerializer, Immutable, Alias("crm.AgentReply")]
public sealed record AgentReply
{
    [Id(0)] public required string Actor { get; init; }
    [Id(1)] public required string Text { get; init; }
    [Id(2)] public string? Html { get; init; }
    [Id(3)] public Guid? ConversationId { get; init; }
    [Id(4)] public string? RequestId { get; init; }
    /// <summary>Status to set with the reply (Zendesk's "submit as"); null keeps it, but New becomes Open.</summary>
    [Id(5)] public TicketStatus? SetStatus { get; init; }
    /// <summary>Files sent with the reply; stored (blob and row) in the reply's own commit, before its outbox row can be sent.</summary>
    [Id(6)] public IReadOnlyList<InboundAttachment> Attachments { get; init; } = [];
    /// <summary>Email only: addresses copied in (already validated as addresses by the caller).</summary>
    [Id(7)] public IReadOnlyList<string> Cc { get; init; } = [];
}

[GenerateSerializer, Immutable, Alias("crm.OutboundDraft")]
public sealed record OutboundDraft
{
    [Id(0)] public required long TicketNumber { get; init; }
    [Id(1)] public required string Actor { get; init; }
    [Id(2)] public required string Text { get; init; }
    [Id(3)] public string? Html { get; init; }
    [Id(4)] public string? RequestId { get; init; }
}

[GenerateSerializer, Immutable, Alias("crm.ConversationSnapshot")]
public sealed record ConversationSnapshot(
    [property: Id(0)] Guid Id,
    [property: Id(1)] string ChannelAccountId,
    [property: Id(2)] ChannelKind Channel,
    [property: Id(3)] string ThreadKey,
    [property: Id(4)] Guid CustomerId,
    [property: Id(5)] string CustomerIdentity,
    [property: Id(6)] long TicketNumber);
