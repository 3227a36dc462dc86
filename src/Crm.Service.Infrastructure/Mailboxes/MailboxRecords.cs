namespace Crm.Service.Infrastructure.Mailboxes;

/// <summary>Where a mailbox reader stands in one folder (see <see cref="Crm.Connectors.Abstractions.MailboxCursor"/>).</summary>
public sealed class MailboxCursorRecord
{
    public required string ChannelAccountId { get; set; }
    public required string Folder { get; set; }
    public long UidValidity { get; set; }
    public long LastUid { get; set; }
    /// <summary>The server mailbox the UIDs are of (see <see cref="Crm.Connectors.Abstractions.MailboxCursor.Server"/>).</summary>
    public string? Server { get; set; }
    /// <summary>When the cursor last moved, that is, when the reader last took mail from this folder.</summary>
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>A message a mailbox reader could not map: its raw bytes (inline, or a blob when large) and the reason.</summary>
public sealed class QuarantinedMailRecord
{
    public Guid Id { get; set; }
    public required string ChannelAccountId { get; set; }
    public required string Folder { get; set; }
    public long UidValidity { get; set; }
    public long Uid { get; set; }
    public required string Reason { get; set; }
    /// <summary>SHA-256 of the raw source: the same message quarantined twice (a redelivery) is kept once.</summary>
    public required string Sha256 { get; set; }
    public long Length { get; set; }
    public byte[]? Content { get; set; }
    public string? BlobSha256 { get; set; }
    public DateTimeOffset At { get; set; }
    /// <summary>Set when an admin deleted the entry or the pruner removed it (Unix ms): the row stays as a tombstone,
    /// without bytes, so the same mail read again (a cursor reset reads the folder from UID 1) is not kept again.</summary>
    public long? DeletedAtMs { get; set; }
}

/// <summary>An automatic mail (see <see cref="Crm.Connectors.Abstractions.IAutomaticMailStore"/>): queued, sent,
/// suppressed by the per-recipient cap, or failed. Times are Unix milliseconds, so SQLite can compare them.</summary>
public sealed class AutomaticMailRecord
{
    /// <summary><see cref="Sending"/>: the send to the server started (written before it, review EM7 EN2); a row still in
    /// it when the sender next looks was cut off by a crash and may have been delivered, so it becomes
    /// <see cref="Unconfirmed"/>, never sent again. <see cref="Unconfirmed"/>: may have been delivered (EN8: its own
    /// state, not <see cref="Failed"/> with a telling error text).</summary>
    public const int Pending = 0, Sent = 1, Suppressed = 2, Failed = 3, Sending = 4, Unconfirmed = 5;

    public Guid Id { get; set; }
    public required string ChannelAccountId { get; set; }
    public required string Kind { get; set; }
    public long TicketNumber { get; set; }
    /// <summary>Lower-cased address the mail is sent to.</summary>
    public required string Recipient { get; set; }
    /// <summary>The address in the form the per-recipient cap counts by (no "+tag"; Gmail without dots).</summary>
    public string RecipientKey { get; set; } = "";
    public string? RecipientName { get; set; }
    public string? InReplyTo { get; set; }
    public string? Subject { get; set; }
    public required string Language { get; set; }
    public int State { get; set; }
    public int Attempts { get; set; }
    public long CreatedAtMs { get; set; }
    public long NextAttemptAtMs { get; set; }
    public long? SentAtMs { get; set; }
    public string? Error { get; set; }
}
