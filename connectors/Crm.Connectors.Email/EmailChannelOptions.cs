using System.ComponentModel.DataAnnotations;

namespace Crm.Connectors.Email;

/// <summary>Deployment-wide settings of the email channel (<c>Channels:Email</c>); per-mailbox settings are the account's.</summary>
public sealed class EmailChannelOptions
{
    public const string Section = "Channels:Email";

    /// <summary>How often a mailbox whose server offers no IDLE is polled.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>IDLE is restarted this often, well inside the 29 minutes after which RFC 2177 lets a server drop it.</summary>
    [Range(typeof(TimeSpan), "00:00:05", "00:29:00")]
    public TimeSpan IdleRefresh { get; set; } = TimeSpan.FromMinutes(9);

    /// <summary>Most messages fetched (and handed off) per round trip.</summary>
    [Range(1, 1000)]
    public int BatchSize { get; set; } = 50;

    /// <summary>Most mails of one batch handed off at the same time. Mails that may belong to one conversation (same
    /// sender, or linked by Message-ID/References) share a lane and are handed off in UID order; 1 hands off one by one.</summary>
    [Range(1, 256)]
    public int HandOffParallelism { get; set; } = 16;

    /// <summary>A message larger than this (by its RFC822.SIZE) is not downloaded: its header is stored with a note that
    /// flags it to the agent, and the full source stays on the mail server (marked or moved like any other).</summary>
    [Range(1024, int.MaxValue)]
    public int MaxMessageBytes { get; set; } = 50 * 1024 * 1024;

    /// <summary>Most bytes of mail bodies one batch downloads and holds (sizes are read first, with RFC822.SIZE); a
    /// single mail larger than this is a batch of its own.</summary>
    [Range(1024, int.MaxValue)]
    public int MaxBatchBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>Most bytes of header kept of a mail over <see cref="MaxMessageBytes"/> (whose body is not downloaded).</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxHeaderBytes { get; set; } = 256 * 1024;

    /// <summary>A message with more MIME entities than this (counted by MimeKit's streaming reader, attached messages
    /// included) is not parsed either (like an oversize one): a few megabytes of tiny parts cost MimeKit about 90 bytes of
    /// memory per byte of mail.</summary>
    [Range(10, 1_000_000)]
    public int MaxMimeParts { get; set; } = 2000;

    /// <summary>A message with more header fields than this (its own, its parts' and attached messages' together) is not
    /// parsed either: MimeKit keeps about 240 bytes per header field and has no limit of its own.</summary>
    [Range(100, 1_000_000)]
    public int MaxHeaderLines { get; set; } = 10_000;

    /// <summary>A message with one header field longer than this is not parsed either: a From or To of a million
    /// addresses is one field, and MimeKit would build an object per address.</summary>
    [Range(4 * 1024, 16 * 1024 * 1024)]
    public int MaxHeaderFieldBytes { get; set; } = 256 * 1024;

    /// <summary>Backoff after a connection, login or server error: doubles from the first to the last.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan FirstReconnectDelay { get; set; } = TimeSpan.FromSeconds(1);

    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Connect, command and send timeout of one IMAP or SMTP operation.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan ServerTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Most automatic mails (acknowledgements, notifications) to one recipient per <see cref="AutomaticMailWindow"/>.</summary>
    [Range(0, 1000)]
    public int MaxAutomaticMailsPerRecipient { get; set; } = 3;

    /// <summary>Most automatic mails of one account per <see cref="AutomaticMailWindow"/>, all recipients together: a
    /// flood of spoofed senders cannot turn the account's relay into a spam cannon.</summary>
    [Range(0, 100_000)]
    public int MaxAutomaticMailsPerAccount { get; set; } = 100;

    [Range(typeof(TimeSpan), "00:01:00", "7.00:00:00")]
    public TimeSpan AutomaticMailWindow { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Quarantined mail (raw sources of refused, unparseable or automatic mail) is kept this long.</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan QuarantineRetention { get; set; } = TimeSpan.FromDays(90);

    /// <summary>How often quarantined mail past <see cref="QuarantineRetention"/> is removed.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "7.00:00:00")]
    public TimeSpan QuarantinePruneInterval { get; set; } = TimeSpan.FromHours(1);

    internal TimeSpan ReconnectDelay(int failures)
    {
        var delay = FirstReconnectDelay * Math.Pow(2, Math.Min(failures - 1, 20));
        return delay > MaxReconnectDelay ? MaxReconnectDelay : delay;
    }
}
