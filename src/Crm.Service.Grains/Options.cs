using System.ComponentModel.DataAnnotations;

namespace Crm.Service.Grains;

/// <summary>Ticket lifecycle rules (section "Tickets").</summary>
public sealed class TicketOptions
{
    public const string Section = "Tickets";

    /// <summary>A customer message on a resolved ticket reopens it within this window; after it the ticket closes
    /// and the next message opens a follow-up ticket linked to it.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "3650.00:00:00")]
    public TimeSpan ReopenWindow { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often a due lifecycle reminder ticks again until its handler has done its work.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan ReminderPeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Files one agent reply may carry; each is stored like an inbound attachment before the reply can be sent.</summary>
    [Range(0, 100)]
    public int MaxReplyAttachments { get; set; } = 10;

    /// <summary>Largest file of an agent reply (never more than <see cref="MaxReplyTotalBytes"/> in effect). Bounded like
    /// the total at start-up, so a file is always read into one array (no int overflow on a 2 GiB setting; review EM4).</summary>
    [Range(1, MaxReplyTotalBytesLimit)]
    public long MaxReplyAttachmentBytes { get; set; } = DefaultMaxReplyTotalBytes;

    /// <summary>All files of one agent reply together. Base64 makes them ~37% larger in the mail: 6.8 MB of files plus
    /// the longest text and HTML stays below Postfix's default message_size_limit (10,240,000 bytes). The upper bound
    /// keeps a reply well below Orleans' message size limit (100 MiB by default), since the files travel to the ticket
    /// grain in one call.</summary>
    [Range(1, MaxReplyTotalBytesLimit)]
    public long MaxReplyTotalBytes { get; set; } = DefaultMaxReplyTotalBytes;

    public const long DefaultMaxReplyTotalBytes = 6_800_000;

    /// <summary>Highest allowed <see cref="MaxReplyTotalBytes"/>: half of Orleans' default MaxMessageBodySize.</summary>
    public const long MaxReplyTotalBytesLimit = 50L * 1024 * 1024;

    /// <summary>Cc addresses one email reply may copy in.</summary>
    [Range(0, 100)]
    public int MaxReplyCc { get; set; } = 20;
}

/// <summary>Limits on what an inbound message may carry (section "Ingest").</summary>
public sealed class IngestOptions
{
    public const string Section = "Ingest";

    [Range(1, long.MaxValue)]
    public long MaxAttachmentBytes { get; set; } = 25 * 1024 * 1024;

    [Range(0, 1000)]
    public int MaxAttachments { get; set; } = 50;

    /// <summary>Raw sources up to this size are kept in the database row; larger ones go to the blob store.</summary>
    [Range(0, 16 * 1024 * 1024)]
    public int MaxInlineRawSourceBytes { get; set; } = 256 * 1024;
}
