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
}
