namespace Crm.Connectors.Abstractions;

/// <summary>A conversation of a channel account as a threading connector needs it: where a reply belongs.</summary>
public sealed record ThreadMatch(string ThreadKey, string CustomerIdentity, long TicketNumber);

/// <summary>The thread an outbound message continues: the ticket's subject and the ids of the thread's messages,
/// oldest first (inbound: the channel's own ids; outbound: our message ids).</summary>
public sealed record ThreadHistory(string? TicketSubject, IReadOnlyList<ThreadHistoryEntry> Messages);

public sealed record ThreadHistoryEntry(string? InboundExternalId, Guid? OutboundMessageId, DateTimeOffset At);

/// <summary>
/// Indexed reads of the store for connectors that thread by message references (email): which conversation holds a
/// message a reply refers to, which conversations a ticket tag names, and what an outbound message answers.
/// </summary>
public interface IConversationLookup
{
    /// <summary>The conversation on <paramref name="channelAccountId"/> holding any of the given messages (inbound by the
    /// channel's id, outbound by our message id); the most recent match wins. Null when none is stored.</summary>
    Task<ThreadMatch?> FindByMessagesAsync(string channelAccountId, IReadOnlyCollection<string> inboundExternalIds, IReadOnlyCollection<Guid> outboundMessageIds, CancellationToken cancellationToken = default);

    /// <summary>The conversations on <paramref name="channelAccountId"/> that belong to any of the tickets <paramref name="ticketNumbers"/> (one query; callers bound the list).</summary>
    Task<IReadOnlyList<ThreadMatch>> FindByTicketsAsync(string channelAccountId, IReadOnlyCollection<long> ticketNumbers, CancellationToken cancellationToken = default);

    /// <summary>The messages of one conversation (at most <paramref name="max"/>, the newest) and its ticket's subject.</summary>
    Task<ThreadHistory> HistoryAsync(string channelAccountId, string threadKey, int max = 50, CancellationToken cancellationToken = default);

    /// <summary>The conversation on <paramref name="channelAccountId"/> holding an inbound message whose external id is one
    /// of <paramref name="externalIds"/> or starts with one of them followed by <paramref name="qualifier"/> (an email
    /// dedupe key of any sender); the most recent match wins. Callers bound the list.</summary>
    Task<ThreadMatch?> FindByMessagesOfAnySenderAsync(string channelAccountId, IReadOnlyCollection<string> externalIds, string qualifier, CancellationToken cancellationToken = default) =>
        Task.FromResult<ThreadMatch?>(null);

    /// <summary>The conversations on <paramref name="channelAccountId"/> whose thread key starts with <paramref name="threadKeyPrefix"/>.</summary>
    Task<IReadOnlyList<ThreadMatch>> FindByThreadKeyPrefixAsync(string channelAccountId, string threadKeyPrefix, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<ThreadMatch>>([]);

    /// <summary>Whether <paramref name="address"/> was copied in on ticket <paramref name="ticketNumber"/>: named among the
    /// other recipients (To/Cc) of one of its inbound messages or in the Cc of one of its replies (the newest
    /// <paramref name="maxMessages"/> messages that name anyone are read).</summary>
    Task<bool> WasCopiedAsync(long ticketNumber, string address, int maxMessages = 500, CancellationToken cancellationToken = default) =>
        Task.FromResult(false);

    /// <summary>Whether a mail from <paramref name="address"/>, named on ticket <paramref name="ticketNumber"/>, may join it
    /// as a participant (review EN1): it answers one of our outbound messages on that ticket
    /// (<paramref name="referencedOutbound"/>) whose Cc named <paramref name="address"/> (an agent copied them in), or
    /// its own To/Cc (<paramref name="recipients"/>) names the ticket's customer (a reply-all in the shared thread).
    /// Headers the ticket's customer wrote (a reused Message-ID, a shared root) vouch for no one.</summary>
    Task<bool> MayJoinAsync(string channelAccountId, long ticketNumber, string address, IReadOnlyCollection<Guid> referencedOutbound, IReadOnlyCollection<string> recipients, CancellationToken cancellationToken = default) =>
        Task.FromResult(false);

    /// <summary>Whether the conversation <paramref name="threadKey"/> is a participant's: its ticket belongs to another
    /// customer (review EN4: a participant's first mail, redelivered, must not count as the ticket's opener).</summary>
    Task<bool> IsParticipantAsync(string channelAccountId, string threadKey, CancellationToken cancellationToken = default) =>
        Task.FromResult(false);

    /// <summary>Whether <paramref name="messageId"/> is an outbound message sent on <paramref name="channelAccountId"/> (a bounce may name it).</summary>
    Task<bool> IsOutboundAsync(string channelAccountId, Guid messageId, CancellationToken cancellationToken = default);
}

/// <summary>Where a mailbox reader stands: the folder's UIDVALIDITY and the highest UID it has handled, and which
/// server mailbox that was (<paramref name="Server"/>, an opaque identity such as a hash of host and user; null for a
/// cursor stored before it was recorded). A UID means nothing in another server's mailbox, even with the same UIDVALIDITY.</summary>
public sealed record MailboxCursor(uint UidValidity, uint LastUid, string? Server = null);

/// <summary>The cursor "folder" where a connector records when its account last received something from its source
/// (UidValidity = Unix seconds, LastUid = the source's own id of it, e.g. Telegram's update_id); the admin API shows
/// it as the channel's last received time. Written at most every half minute per account and node.</summary>
public static class ChannelActivity
{
    public const string ReceivedFolder = "health:received";
}

/// <summary>A message a mailbox reader could not map at all: kept byte for byte with the reason, for admins.</summary>
public sealed record QuarantinedMail(string ChannelAccountId, string Folder, uint UidValidity, uint Uid, string Reason, byte[] RawSource, DateTimeOffset At);

/// <summary>The durable state of polling connectors (IMAP readers; Telegram bots, whose cursor is the last update_id
/// and whose quarantine keeps the updates that are not messages): cursors and the quarantine.</summary>
public interface IMailboxStateStore
{
    Task<MailboxCursor?> GetCursorAsync(string channelAccountId, string folder, CancellationToken cancellationToken = default);

    /// <summary>Stores the cursor durably; called only after every message up to it was handed off.</summary>
    Task SaveCursorAsync(string channelAccountId, string folder, MailboxCursor cursor, CancellationToken cancellationToken = default);

    /// <summary>Keeps an unmappable message (idempotent: the same raw source on the same account is kept once). True
    /// when this call kept it, false when it was kept already (by an earlier or a concurrent call): a claim, so an
    /// automatic answer keyed by its raw bytes is sent by the one caller that won.</summary>
    Task<bool> QuarantineAsync(QuarantinedMail mail, CancellationToken cancellationToken = default);

    /// <summary>Deletes what <paramref name="folder"/> of the account kept before <paramref name="keptBefore"/> (a
    /// retention period for rows that are not customer messages); returns how many rows went.</summary>
    Task<int> PruneQuarantineAsync(string channelAccountId, string folder, DateTimeOffset keptBefore, CancellationToken cancellationToken = default);

    /// <summary>Whether exactly these raw bytes are kept for the account already (a redelivery of something handled:
    /// its side effects, such as an automatic answer, must not happen twice).</summary>
    Task<bool> IsQuarantinedAsync(string channelAccountId, byte[] rawSource, CancellationToken cancellationToken = default);
}

/// <summary>One kept message of the quarantine as admins see it (without its bytes).</summary>
public sealed record QuarantineEntry(Guid Id, string ChannelAccountId, string Folder, uint UidValidity, uint Uid, string Reason, long Length, DateTimeOffset At);

/// <summary>Where a mailbox reader stands in one folder, and when it last took mail from it.</summary>
public sealed record MailboxFolderState(string Folder, uint UidValidity, uint LastUid, DateTimeOffset UpdatedAt);

/// <summary>
/// What admins see and do with the state of polling connectors: the quarantine (list, read the raw source, delete,
/// prune by age) and the readers' cursors. Separate from <see cref="IMailboxStateStore"/>, which readers use.
/// </summary>
public interface IMailboxAdminStore
{
    /// <summary>A page of the account's quarantine, newest first, and how many it holds in all.</summary>
    Task<(IReadOnlyList<QuarantineEntry> Items, int Total)> ListQuarantineAsync(string channelAccountId, int offset, int limit, CancellationToken cancellationToken = default);

    /// <summary>One kept message with its raw bytes; null when the account holds no such entry.</summary>
    Task<(QuarantineEntry Entry, byte[] RawSource)?> GetQuarantinedAsync(string channelAccountId, Guid id, CancellationToken cancellationToken = default);

    /// <summary>Removes one entry; false when the account holds no such entry.</summary>
    Task<bool> DeleteQuarantinedAsync(string channelAccountId, Guid id, CancellationToken cancellationToken = default);

    /// <summary>Removes the entries of the given accounts kept before <paramref name="before"/>; returns how many.</summary>
    Task<int> PruneQuarantineAsync(IReadOnlyCollection<string> channelAccountIds, DateTimeOffset before, CancellationToken cancellationToken = default);

    /// <summary>The accounts that have anything in the quarantine (disabled and removed ones too).</summary>
    Task<IReadOnlyList<string>> QuarantinedAccountsAsync(CancellationToken cancellationToken = default);

    /// <summary>The account's reader cursors, one per folder.</summary>
    Task<IReadOnlyList<MailboxFolderState>> FoldersAsync(string channelAccountId, CancellationToken cancellationToken = default);
}

/// <summary>One automatic mail (an acknowledgement of a new ticket) as it is claimed and queued: who gets it, about
/// which ticket, what it answers (<paramref name="InReplyTo"/>, the customer's Message-ID) and in which language.
/// <paramref name="InFlight"/>: a send of it started and never recorded its outcome (a crash during it).</summary>
public sealed record AutomaticMail(
    Guid Id,
    string ChannelAccountId,
    string Kind,
    long TicketNumber,
    string Recipient,
    string? RecipientName,
    string? InReplyTo,
    string? Subject,
    string Language,
    DateTimeOffset At,
    int Attempts = 0,
    bool InFlight = false);

/// <summary>What a claim of an automatic mail came to.</summary>
public enum AutomaticMailClaim
{
    /// <summary>Queued: this caller's mail will be sent.</summary>
    Claimed,
    /// <summary>This ticket had its automatic mail of this kind already (a redelivery, another reader): none again.</summary>
    AlreadyClaimed,
    /// <summary>The recipient had the most automatic mails of the rolling window: none is sent, and none later for this ticket.</summary>
    OverCap,
}

/// <summary>
/// The durable queue and ledger of automatic mail: at most one of a kind per ticket, at most N per recipient over a
/// rolling window (counted from the store, so a restart or a second node does not reset it), and the queue a sender
/// works through with retries.
/// </summary>
public interface IAutomaticMailStore
{
    /// <summary>Claims <paramref name="mail"/>: once per (account, kind, ticket), refused when its recipient (an address
    /// counted in its canonical form) already had <paramref name="maxPerRecipient"/> automatic mails, or its account
    /// <paramref name="maxPerAccount"/>, since <paramref name="window"/> before <see cref="AutomaticMail.At"/>.</summary>
    Task<AutomaticMailClaim> ClaimAsync(AutomaticMail mail, int maxPerRecipient, int maxPerAccount, TimeSpan window, CancellationToken cancellationToken = default);

    /// <summary>Queued mails due at <paramref name="now"/>, oldest first, and those whose send started and never
    /// recorded an outcome (<see cref="AutomaticMail.InFlight"/>).</summary>
    Task<IReadOnlyList<AutomaticMail>> DueAsync(DateTimeOffset now, int max, CancellationToken cancellationToken = default);

    /// <summary>Records, durably, that the send of a queued mail starts now: a crash before <see cref="CompleteAsync"/>
    /// leaves it in flight, and the next sender settles it as not confirmed instead of sending it again (review EN2).</summary>
    Task MarkInFlightAsync(Guid id, CancellationToken cancellationToken = default);

    /// <summary>Marks a queued mail sent (<paramref name="error"/> null), failed for good, due again at
    /// <paramref name="retryAt"/>, or, with <paramref name="unconfirmed"/>, "may have been delivered" (never resent).</summary>
    Task CompleteAsync(Guid id, string? error, DateTimeOffset? retryAt, DateTimeOffset now, CancellationToken cancellationToken = default, bool unconfirmed = false);
}
