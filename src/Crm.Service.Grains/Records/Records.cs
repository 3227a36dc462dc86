using Crm.Service.Contracts;

namespace Crm.Service.Grains.Records;

// The rows of the system of record. Grains are their single writers; the store maps them (EF Core,
// configured in Infrastructure) without attributes here, so the domain does not depend on the store.
// Grains hand the store copies, never the object they keep mutating.

public sealed class CustomerRecord
{
    public Guid Id { get; set; }
    public string? Name { get; set; }
    public string? Language { get; set; }
    public string? Organization { get; set; }
    public List<string> Tags { get; set; } = [];
    public string? Notes { get; set; }
    public Dictionary<string, string> CustomFields { get; set; } = [];
    public Guid? MergedInto { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    public CustomerRecord Copy()
    {
        var copy = (CustomerRecord)MemberwiseClone();
        copy.Tags = [.. Tags];
        copy.CustomFields = new Dictionary<string, string>(CustomFields);
        return copy;
    }
}

/// <summary>A channel identity and the customer it belongs to; <see cref="Key"/> comes from <see cref="GrainKeys.Identity"/>.</summary>
public sealed class IdentityRecord
{
    public required string Key { get; set; }
    public IdentityKind Kind { get; set; }
    public required string Value { get; set; }
    public Guid CustomerId { get; set; }
    public DateTimeOffset LinkedAt { get; set; }

    public IdentityRecord Copy() => (IdentityRecord)MemberwiseClone();
}

public sealed class ConversationRecord
{
    public Guid Id { get; set; }
    /// <summary>The grain key (<see cref="GrainKeys.Conversation"/>).</summary>
    public required string Key { get; set; }
    public required string ChannelAccountId { get; set; }
    public ChannelKind Channel { get; set; }
    public required string ThreadKey { get; set; }
    public Guid CustomerId { get; set; }
    /// <summary>Identity key of the customer on this channel; replies go to it.</summary>
    public required string CustomerIdentity { get; set; }
    public long TicketNumber { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    public ConversationRecord Copy() => (ConversationRecord)MemberwiseClone();
}

public sealed class TicketRecord
{
    public long Number { get; set; }
    public required string Subject { get; set; }
    public TicketStatus Status { get; set; }
    public TicketPriority Priority { get; set; }
    public string? Team { get; set; }
    public string? Assignee { get; set; }
    public List<string> Tags { get; set; } = [];
    public Guid CustomerId { get; set; }
    public List<Guid> ConversationIds { get; set; } = [];
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public DateTimeOffset? ResolvedAt { get; set; }
    public DateTimeOffset? ClosedAt { get; set; }
    public DateTimeOffset? FirstResponseAt { get; set; }
    public DateTimeOffset? LastCustomerMessageAt { get; set; }
    public DateTimeOffset? LastAgentReplyAt { get; set; }
    public long? FollowUpOf { get; set; }
    public long? MergedInto { get; set; }

    public TicketRecord Copy()
    {
        var copy = (TicketRecord)MemberwiseClone();
        copy.Tags = [.. Tags];
        copy.ConversationIds = [.. ConversationIds];
        return copy;
    }
}

public sealed class MessageRecord
{
    public Guid Id { get; set; }
    /// <summary>Null for internal notes, which belong to the ticket only.</summary>
    public Guid? ConversationId { get; set; }
    public long TicketNumber { get; set; }
    public MessageDirection Direction { get; set; }
    public string? ChannelAccountId { get; set; }
    /// <summary>Inbound only: the channel's own id, unique per channel account, which is what makes redelivery harmless.</summary>
    public string? ExternalId { get; set; }
    /// <summary>Outbound only: the id the channel gave our message when it took it. Not unique (a bridge may answer
    /// "queued" every time) and never compared with inbound ids.</summary>
    public string? OutboundExternalId { get; set; }
    /// <summary>For agent replies: the caller's Idempotency-Key scoped to its API key, unique, so a retried request returns the first reply.</summary>
    public string? IdempotencyKey { get; set; }
    /// <summary>Fingerprint of the request that carried <see cref="IdempotencyKey"/>: the same key with another body is refused.</summary>
    public string? RequestHash { get; set; }
    /// <summary>Identity key for inbound messages, agent id for outbound messages and notes.</summary>
    public required string Author { get; set; }
    public string? Subject { get; set; }
    public string? Text { get; set; }
    /// <summary>Sanitized HTML.</summary>
    public string? Html { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>When the sender says they sent it (inbound) or when it left (outbound).</summary>
    public DateTimeOffset? SentAt { get; set; }
    public DeliveryStatus Delivery { get; set; }
    public string? DeliveryError { get; set; }
    public int AttachmentCount { get; set; }
    /// <summary>Email replies only: the addresses the agent copied in, one per line; the outbox sends them as Cc.</summary>
    public string? Cc { get; set; }

    public MessageRecord Copy() => (MessageRecord)MemberwiseClone();
}

public sealed class AttachmentRecord
{
    public Guid Id { get; set; }
    public Guid MessageId { get; set; }
    public required string FileName { get; set; }
    /// <summary>Sniffed from the bytes; what the console serves.</summary>
    public required string ContentType { get; set; }
    /// <summary>What the sender claimed; kept for the record, never trusted.</summary>
    public string? DeclaredContentType { get; set; }
    public long Length { get; set; }
    public required string Sha256 { get; set; }
}

/// <summary>The bytes of an inbound message exactly as received: inline when small, in the blob store when large.</summary>
public sealed class RawSourceRecord
{
    public Guid MessageId { get; set; }
    public required string ContentType { get; set; }
    public long Length { get; set; }
    public byte[]? Content { get; set; }
    public string? BlobSha256 { get; set; }
}

public sealed class AuditRecord
{
    public Guid Id { get; set; }
    /// <summary>"ticket" or "customer".</summary>
    public required string EntityType { get; set; }
    public required string EntityId { get; set; }
    public required string Action { get; set; }
    public required string Actor { get; set; }
    public DateTimeOffset At { get; set; }
    public string? Field { get; set; }
    public string? OldValue { get; set; }
    public string? NewValue { get; set; }
}

/// <summary>A request id of an idempotent change (<see cref="Contracts.TicketChange.RequestId"/>), stored in the commit
/// of the change it made, so a retry with the same id finds it and changes nothing.</summary>
public sealed class RequestKeyRecord
{
    public required string Key { get; set; }
    public long TicketNumber { get; set; }
    public DateTimeOffset At { get; set; }
}

public enum OutboxState
{
    Pending = 0,
    Done = 1,
    Failed = 2,
}

/// <summary>An outbound message waiting for its channel; written in the same commit as the message.</summary>
public sealed class OutboxRecord
{
    public Guid Id { get; set; }
    public Guid MessageId { get; set; }
    public required string ConversationKey { get; set; }
    public required string ChannelAccountId { get; set; }
    public ChannelKind Channel { get; set; }
    public OutboxState State { get; set; }
    public int Attempts { get; set; }
    public DateTimeOffset NextAttemptAt { get; set; }
    /// <summary>The channel's own words for the last failure: for admins and logs, never shown to agents.</summary>
    public string? LastError { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>The parts of a message in several parts that its sender confirmed so far, in the sender's own words
    /// (Telegram: the sent message ids, "5001,5002"): committed after each part, so a retry after a restart or on
    /// another node sends only the rest (reviews ER10, FX1). Null until a part went out.</summary>
    public string? SentParts { get; set; }

    public OutboxRecord Copy() => (OutboxRecord)MemberwiseClone();
}

public sealed class ChannelAccountRecord
{
    /// <summary>A slug: lower-case letters, digits and '-', never ':'.</summary>
    public required string Id { get; set; }
    public ChannelKind Kind { get; set; }
    public required string Name { get; set; }
    /// <summary>HMAC secret for signed channels (both directions), protected by <see cref="Storage.ISecretProtector"/>
    /// (older databases hold it in plain text; it is protected on the next write).</summary>
    public string? Secret { get; set; }
    /// <summary>Read only: older databases kept the API kind's webhook URL here, before <see cref="Settings"/>.</summary>
    public string? WebhookUrl { get; set; }
    /// <summary>The kind's settings without secret fields, as JSON.</summary>
    public string? Settings { get; set; }
    /// <summary>The secret settings, name → protected value.</summary>
    public Dictionary<string, string> SecretSettings { get; set; } = [];
    public bool Enabled { get; set; } = true;
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public DateTimeOffset? LastSuccessAt { get; set; }
    public DateTimeOffset? LastErrorAt { get; set; }
    public string? LastError { get; set; }

    /// <summary>The settings JSON, or for a row from before typed settings, its webhook URL as API settings.</summary>
    public string? SettingsOrLegacy() =>
        Settings ?? (WebhookUrl is null ? null : System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["webhookUrl"] = WebhookUrl }));

    public ChannelAccountRecord Copy()
    {
        var copy = (ChannelAccountRecord)MemberwiseClone();
        copy.SecretSettings = new Dictionary<string, string>(SecretSettings);
        return copy;
    }
}

public sealed class ApiKeyRecord
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    /// <summary>"admin" or "agent".</summary>
    public required string Role { get; set; }
    /// <summary>SHA-256 of the key; the key itself is shown once and never stored.</summary>
    public required string KeyHash { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
    /// <summary>The console account (AspNetUsers.Id) the key belongs to; null for system keys made through the admin API.</summary>
    public string? OwnerId { get; set; }
}
