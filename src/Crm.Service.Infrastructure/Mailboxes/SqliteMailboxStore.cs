using System.Security.Cryptography;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Grains;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Mailboxes;

/// <summary>
/// The store side of threading and mailbox connectors: indexed reads over messages and conversations, and the
/// readers' cursors and quarantine, written in their own small transactions (like API keys: not grain state).
/// </summary>
internal sealed class SqliteMailboxStore(
    IDbContextFactory<CrmDbContext> contexts,
    IBlobStore blobs,
    IBlobHolds blobHolds,
    IOptions<IngestOptions> ingest,
    TimeProvider time) : IConversationLookup, IMailboxStateStore, IMailboxAdminStore, IAutomaticMailStore
{
    /// <summary>One claim at a time on this node: the cap's count and the insert must not interleave (the unique index
    /// still keeps one mail per ticket across nodes).</summary>
    private readonly SemaphoreSlim _claims = new(1, 1);

    public async Task<ThreadMatch?> FindByMessagesAsync(string channelAccountId, IReadOnlyCollection<string> inboundExternalIds, IReadOnlyCollection<Guid> outboundMessageIds, CancellationToken cancellationToken = default)
    {
        if (inboundExternalIds.Count == 0 && outboundMessageIds.Count == 0)
            return null;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // Both lookups hit an index: (ChannelAccountId, ExternalId) for inbound, the primary key for outbound.
        var inbound = inboundExternalIds.Count == 0 ? [] : await db.Messages.AsNoTracking()
            .Where(m => m.ChannelAccountId == channelAccountId && m.Direction == MessageDirection.Inbound && m.ExternalId != null && inboundExternalIds.Contains(m.ExternalId))
            .Select(m => new { m.ConversationId, m.CreatedAt }).ToListAsync(cancellationToken);
        var outbound = outboundMessageIds.Count == 0 ? [] : await db.Messages.AsNoTracking()
            .Where(m => outboundMessageIds.Contains(m.Id) && m.ChannelAccountId == channelAccountId && m.Direction == MessageDirection.Outbound)
            .Select(m => new { m.ConversationId, m.CreatedAt }).ToListAsync(cancellationToken);
        var newest = inbound.Concat(outbound).Where(m => m.ConversationId is not null).OrderByDescending(m => m.CreatedAt).FirstOrDefault();
        if (newest is null)
            return null;
        return await db.Conversations.AsNoTracking().Where(c => c.Id == newest.ConversationId)
            .Select(c => new ThreadMatch(c.ThreadKey, c.CustomerIdentity, c.TicketNumber)).SingleOrDefaultAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<ThreadMatch>> FindByTicketsAsync(string channelAccountId, IReadOnlyCollection<long> ticketNumbers, CancellationToken cancellationToken = default)
    {
        if (ticketNumbers.Count == 0)
            return [];
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Conversations.AsNoTracking()
            .Where(c => ticketNumbers.Contains(c.TicketNumber) && c.ChannelAccountId == channelAccountId)
            .Select(c => new ThreadMatch(c.ThreadKey, c.CustomerIdentity, c.TicketNumber)).ToListAsync(cancellationToken);
    }

    public async Task<ThreadMatch?> FindByMessagesOfAnySenderAsync(string channelAccountId, IReadOnlyCollection<string> externalIds, string qualifier, CancellationToken cancellationToken = default)
    {
        if (externalIds.Count == 0 || string.IsNullOrEmpty(qualifier))
            return null;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        Guid? newestConversation = null;
        var newestAt = DateTimeOffset.MinValue;
        foreach (var id in externalIds)
        {
            // A range over the (ChannelAccountId, ExternalId) index: every "{id}{qualifier}…" key, whoever sent it.
            var low = id + qualifier;
            var high = id + qualifier[..^1] + (char)(qualifier[^1] + 1);
            var hit = await db.Messages.AsNoTracking()
                .Where(m => m.ChannelAccountId == channelAccountId && m.Direction == MessageDirection.Inbound && m.ExternalId != null
                    && (m.ExternalId == id || (string.Compare(m.ExternalId, low) >= 0 && string.Compare(m.ExternalId, high) < 0)))
                .OrderByDescending(m => m.CreatedAt).Select(m => new { m.ConversationId, m.CreatedAt }).FirstOrDefaultAsync(cancellationToken);
            if (hit?.ConversationId is { } conversation && hit.CreatedAt > newestAt)
            {
                newestConversation = conversation;
                newestAt = hit.CreatedAt;
            }
        }
        if (newestConversation is null)
            return null;
        return await db.Conversations.AsNoTracking().Where(c => c.Id == newestConversation)
            .Select(c => new ThreadMatch(c.ThreadKey, c.CustomerIdentity, c.TicketNumber)).SingleOrDefaultAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<ThreadMatch>> FindByThreadKeyPrefixAsync(string channelAccountId, string threadKeyPrefix, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(threadKeyPrefix))
            return [];
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // A range over the unique index on Key ("{account}:{thread key}").
        var low = GrainKeys.Conversation(channelAccountId, threadKeyPrefix);
        var high = low[..^1] + (char)(low[^1] + 1);
        return await db.Conversations.AsNoTracking()
            .Where(c => string.Compare(c.Key, low) >= 0 && string.Compare(c.Key, high) < 0 && c.ChannelAccountId == channelAccountId)
            .OrderBy(c => c.CreatedAt).Take(50)
            .Select(c => new ThreadMatch(c.ThreadKey, c.CustomerIdentity, c.TicketNumber)).ToListAsync(cancellationToken);
    }

    public async Task<bool> WasCopiedAsync(long ticketNumber, string address, int maxMessages = 500, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var wanted = address.Trim();
        var probe = AsciiProbe(wanted);
        // Only lists that contain the address as text are read (SQLite's instr over lower(); review EN7): a sender who
        // fills tickets with long Cc lists no longer makes every unmatched mail load and split all of them. SQLite's
        // lower() folds ASCII only, so the text searched for is the address's longest ASCII run, ASCII-lowered: an
        // entry differing in the case of a non-ASCII letter ("Ärger@" for "ärger@") still passes (review RA7). The
        // exact, case-insensitive entry match below decides ("bob@x" is in "xbob@x" as text).
        var lists = await db.Messages.AsNoTracking()
            .Where(m => m.TicketNumber == ticketNumber && m.Cc != null && m.Cc.ToLower().Contains(probe))
            .OrderByDescending(m => m.CreatedAt).Take(maxMessages).Select(m => m.Cc!).ToListAsync(cancellationToken);
        return lists.Any(list => Names(list, wanted));
    }

    public async Task<bool> IsParticipantAsync(string channelAccountId, string threadKey, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var key = GrainKeys.Conversation(channelAccountId, threadKey);
        return await db.Conversations.AsNoTracking().Where(c => c.Key == key && c.TicketNumber != 0)
            .Join(db.Tickets.AsNoTracking(), c => c.TicketNumber, t => t.Number, (c, t) => new { c.CustomerId, Owner = t.CustomerId })
            .AnyAsync(x => x.CustomerId != x.Owner, cancellationToken);
    }

    /// <summary>The longest run of ASCII characters in <paramref name="address"/>, with only ASCII letters lowered (as
    /// SQLite's lower() does): text every stored entry equal to the address ignoring case contains after lower().</summary>
    internal static string AsciiProbe(string address)
    {
        var (start, length, best, bestLength) = (0, 0, 0, 0);
        for (var i = 0; i <= address.Length; i++)
        {
            if (i < address.Length && char.IsAscii(address[i]))
            {
                if (length++ == 0)
                    start = i;
                continue;
            }
            if (length > bestLength)
                (best, bestLength) = (start, length);
            length = 0;
        }
        return string.Create(bestLength, address.Substring(best, bestLength), static (span, run) =>
        {
            for (var i = 0; i < run.Length; i++)
                span[i] = char.IsAsciiLetterUpper(run[i]) ? (char)(run[i] | 0x20) : run[i];
        });
    }

    /// <summary>Whether a stored Cc list (one entry a line) names <paramref name="address"/>.</summary>
    private static bool Names(string list, string address) =>
        list.Split('\n', StringSplitOptions.RemoveEmptyEntries).Any(entry => string.Equals(AddressOf(entry), address, StringComparison.OrdinalIgnoreCase));

    /// <summary>An agent's Cc entry may be "Name &lt;address&gt;"; an inbound one is the bare address.</summary>
    private static string AddressOf(string entry)
    {
        var text = entry.Trim();
        var open = text.EndsWith('>') ? text.LastIndexOf('<') : -1;
        return open < 0 ? text : text[(open + 1)..^1];
    }

    public async Task<bool> MayJoinAsync(string channelAccountId, long ticketNumber, string address, IReadOnlyCollection<Guid> referencedOutbound, IReadOnlyCollection<string> recipients, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var wanted = address.Trim();
        // (i) An agent copied them in: one of OUR messages on this ticket that the mail answers named them in its Cc.
        if (referencedOutbound.Count > 0)
        {
            var ccs = await db.Messages.AsNoTracking()
                .Where(m => referencedOutbound.Contains(m.Id) && m.TicketNumber == ticketNumber && m.ChannelAccountId == channelAccountId
                    && m.Direction == MessageDirection.Outbound && m.Cc != null)
                .Select(m => m.Cc!).ToListAsync(cancellationToken);
            if (ccs.Any(list => Names(list, wanted)))
                return true;
        }
        // (ii) A reply-all in the shared thread: the mail itself is addressed to the ticket's customer too.
        if (recipients.Count == 0)
            return false;
        var customer = await db.Tickets.AsNoTracking().Where(t => t.Number == ticketNumber).Select(t => (Guid?)t.CustomerId).SingleOrDefaultAsync(cancellationToken);
        if (customer is null)
            return false;
        var theirs = await db.Identities.AsNoTracking().Where(i => i.CustomerId == customer && i.Kind == IdentityKind.Email)
            .Select(i => i.Value).Take(100).ToListAsync(cancellationToken);
        return theirs.Any(value => recipients.Contains(value.Trim(), StringComparer.OrdinalIgnoreCase));
    }

    public async Task<ThreadHistory> HistoryAsync(string channelAccountId, string threadKey, int max = 50, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var key = GrainKeys.Conversation(channelAccountId, threadKey);
        var conversation = await db.Conversations.AsNoTracking().Where(c => c.Key == key).Select(c => new { c.Id, c.TicketNumber }).SingleOrDefaultAsync(cancellationToken);
        if (conversation is null)
            return new ThreadHistory(null, []);
        var subject = await db.Tickets.AsNoTracking().Where(t => t.Number == conversation.TicketNumber).Select(t => t.Subject).SingleOrDefaultAsync(cancellationToken);
        var messages = await db.Messages.AsNoTracking()
            .Where(m => m.ConversationId == conversation.Id && m.Direction != MessageDirection.Note)
            .OrderByDescending(m => m.CreatedAt).Take(max)
            .Select(m => new { m.Id, m.Direction, m.ExternalId, m.CreatedAt }).ToListAsync(cancellationToken);
        return new ThreadHistory(subject, [.. messages.OrderBy(m => m.CreatedAt).Select(m => m.Direction == MessageDirection.Inbound
            ? new ThreadHistoryEntry(m.ExternalId, null, m.CreatedAt)
            : new ThreadHistoryEntry(null, m.Id, m.CreatedAt))]);
    }

    public async Task<bool> IsOutboundAsync(string channelAccountId, Guid messageId, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Messages.AsNoTracking().AnyAsync(m => m.Id == messageId && m.ChannelAccountId == channelAccountId && m.Direction == MessageDirection.Outbound, cancellationToken);
    }

    public async Task<MailboxCursor?> GetCursorAsync(string channelAccountId, string folder, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var row = await db.MailboxCursors.AsNoTracking().SingleOrDefaultAsync(c => c.ChannelAccountId == channelAccountId && c.Folder == folder, cancellationToken);
        return row is null ? null : new MailboxCursor((uint)row.UidValidity, (uint)row.LastUid, row.Server);
    }

    public async Task SaveCursorAsync(string channelAccountId, string folder, MailboxCursor cursor, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var row = await db.MailboxCursors.SingleOrDefaultAsync(c => c.ChannelAccountId == channelAccountId && c.Folder == folder, cancellationToken);
        if (row is null)
            db.MailboxCursors.Add(row = new MailboxCursorRecord { ChannelAccountId = channelAccountId, Folder = folder });
        row.UidValidity = cursor.UidValidity;
        row.LastUid = cursor.LastUid;
        row.Server = cursor.Server;
        row.UpdatedAt = time.GetUtcNow();
        await db.SaveChangesAsync(cancellationToken);
    }

    public async Task<bool> IsQuarantinedAsync(string channelAccountId, byte[] rawSource, CancellationToken cancellationToken = default)
    {
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(rawSource));
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.QuarantinedMail.AnyAsync(q => q.ChannelAccountId == channelAccountId && q.Sha256 == sha256, cancellationToken);
    }

    public async Task<int> PruneQuarantineAsync(string channelAccountId, string folder, DateTimeOffset keptBefore, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var blobs = await db.QuarantinedMail.AsNoTracking().Where(q => q.ChannelAccountId == channelAccountId && q.Folder == folder && q.At < keptBefore && q.BlobSha256 != null).Select(q => q.BlobSha256).ToListAsync(cancellationToken);
        var pruned = await db.QuarantinedMail.Where(q => q.ChannelAccountId == channelAccountId && q.Folder == folder && q.At < keptBefore).ExecuteDeleteAsync(cancellationToken);
        await DeleteUnreferencedBlobsAsync(db, blobs, cancellationToken);
        return pruned;
    }

    /// <summary>
    /// Deletes the blobs (raw sources over the inline limit) of removed quarantine rows that nothing names any more:
    /// blobs are content-addressed, so the same bytes may be a stored message's raw source, an attachment or another
    /// account's quarantined mail, and then stay.
    /// </summary>
    private async Task DeleteUnreferencedBlobsAsync(CrmDbContext db, IReadOnlyCollection<string?> hashes, CancellationToken cancellationToken)
    {
        // Every table naming blobs, knowledge-base attachments included (Blobs/BlobReferences.cs).
        await Blobs.BlobReferences.DeleteUnreferencedAsync(db, blobs, hashes, cancellationToken);
    }

    public async Task<bool> QuarantineAsync(QuarantinedMail mail, CancellationToken cancellationToken = default)
    {
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(mail.RawSource));
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var reason = mail.Reason.Length <= 2000 ? mail.Reason : mail.Reason[..2000];
        if (await db.QuarantinedMail.SingleOrDefaultAsync(q => q.ChannelAccountId == mail.ChannelAccountId && q.Sha256 == sha256, cancellationToken) is { } kept)
        {
            // Kept already: a live entry shows the latest reason (a retry refused for another reason); a tombstone
            // (deleted or pruned) keeps the mail from coming back.
            if (kept.DeletedAtMs is null && kept.Reason != reason)
            {
                kept.Reason = reason;
                await db.SaveChangesAsync(cancellationToken);
            }
            return false;
        }
        var row = new QuarantinedMailRecord
        {
            Id = Guid.CreateVersion7(mail.At),
            ChannelAccountId = mail.ChannelAccountId,
            Folder = mail.Folder,
            UidValidity = mail.UidValidity,
            Uid = mail.Uid,
            Reason = reason,
            Sha256 = sha256,
            Length = mail.RawSource.LongLength,
            At = mail.At,
        };
        // The blob is fsynced before the row that names it is committed, under a durable hold released after the commit,
        // so no node's prune or delete of the same bytes removes them in between (EN3).
        var inline = mail.RawSource.Length <= ingest.Value.MaxInlineRawSourceBytes;
        await using var held = await HeldBlobs.HoldAndPutAsync(blobHolds, blobs, inline ? [] : [mail.RawSource], cancellationToken);
        if (inline)
            row.Content = mail.RawSource;
        else
            row.BlobSha256 = held.Blobs[0].Sha256;
        db.QuarantinedMail.Add(row);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        catch (DbUpdateException)
        {
            // Quarantined concurrently by another reader of the same account: kept once. Anything else is an error.
            await using var check = await contexts.CreateDbContextAsync(cancellationToken);
            if (!await check.QuarantinedMail.AnyAsync(q => q.ChannelAccountId == mail.ChannelAccountId && q.Sha256 == sha256, cancellationToken))
                throw;
            return false;
        }
    }

    public async Task<(IReadOnlyList<QuarantineEntry> Items, int Total)> ListQuarantineAsync(string channelAccountId, int offset, int limit, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var rows = db.QuarantinedMail.AsNoTracking().Where(q => q.ChannelAccountId == channelAccountId && q.DeletedAtMs == null);
        var total = await rows.CountAsync(cancellationToken);
        // Ids are version 7 GUIDs made from the time kept, stored as text that sorts by it: newest first without sorting
        // on a DateTimeOffset (SQLite cannot).
        var page = await rows.OrderByDescending(q => q.Id).Skip(offset).Take(limit)
            .Select(q => new { q.Id, q.ChannelAccountId, q.Folder, q.UidValidity, q.Uid, q.Reason, q.Length, q.At }).ToListAsync(cancellationToken);
        return ([.. page.Select(q => new QuarantineEntry(q.Id, q.ChannelAccountId, q.Folder, (uint)q.UidValidity, (uint)q.Uid, q.Reason, q.Length, q.At))], total);
    }

    public async Task<(QuarantineEntry Entry, byte[] RawSource)?> GetQuarantinedAsync(string channelAccountId, Guid id, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var q = await db.QuarantinedMail.AsNoTracking().SingleOrDefaultAsync(q => q.Id == id && q.ChannelAccountId == channelAccountId && q.DeletedAtMs == null, cancellationToken);
        if (q is null)
            return null;
        byte[] raw;
        if (q.Content is not null)
            raw = q.Content;
        else
        {
            await using var blob = blobs.Open(q.BlobSha256!) ?? throw new InvalidOperationException($"The raw source of quarantined mail {q.Id} (blob {q.BlobSha256}) is missing from the blob store.");
            using var buffer = new MemoryStream();
            await blob.CopyToAsync(buffer, cancellationToken);
            raw = buffer.ToArray();
        }
        return (new QuarantineEntry(q.Id, q.ChannelAccountId, q.Folder, (uint)q.UidValidity, (uint)q.Uid, q.Reason, q.Length, q.At), raw);
    }

    public async Task<bool> DeleteQuarantinedAsync(string channelAccountId, Guid id, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var blob = await db.QuarantinedMail.AsNoTracking().Where(q => q.Id == id && q.ChannelAccountId == channelAccountId && q.DeletedAtMs == null).Select(q => new { q.BlobSha256 }).SingleOrDefaultAsync(cancellationToken);
        if (blob is null)
            return false;
        var deleted = await Tombstone(db.QuarantinedMail.Where(q => q.Id == id && q.ChannelAccountId == channelAccountId && q.DeletedAtMs == null), cancellationToken) > 0;
        await DeleteUnreferencedBlobsAsync(db, [blob.BlobSha256], cancellationToken);
        return deleted;
    }

    /// <summary>How long a tombstone of a deleted or pruned entry is kept beyond the retention: as long as the mail may
    /// be read again from the server (a cursor reset after a host or login change, a new UIDVALIDITY).</summary>
    internal static readonly TimeSpan TombstoneRetention = TimeSpan.FromDays(365);

    /// <summary>Drops the bytes and the reason (a stranger's words) of entries and keeps their hash as a tombstone.</summary>
    private Task<int> Tombstone(IQueryable<QuarantinedMailRecord> rows, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return rows.ExecuteUpdateAsync(u => u
            .SetProperty(q => q.DeletedAtMs, now)
            .SetProperty(q => q.Content, (byte[]?)null)
            .SetProperty(q => q.BlobSha256, (string?)null)
            .SetProperty(q => q.Reason, "(deleted)"), cancellationToken);
    }

    public async Task<int> PruneQuarantineAsync(IReadOnlyCollection<string> channelAccountIds, DateTimeOffset before, CancellationToken cancellationToken = default)
    {
        if (channelAccountIds.Count == 0)
            return 0;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // Tombstones past their own retention go for good.
        var tombstonesBefore = (before - TombstoneRetention).ToUnixTimeMilliseconds();
        await db.QuarantinedMail.Where(q => channelAccountIds.Contains(q.ChannelAccountId) && q.DeletedAtMs != null && q.DeletedAtMs < tombstonesBefore).ExecuteDeleteAsync(cancellationToken);
        // SQLite cannot compare DateTimeOffset columns; the quarantine is small (one row per refused mail), so the ages are read.
        var ids = await db.QuarantinedMail.AsNoTracking().Where(q => channelAccountIds.Contains(q.ChannelAccountId) && q.DeletedAtMs == null).Select(q => new { q.Id, q.At }).ToListAsync(cancellationToken);
        var old = ids.Where(q => q.At < before).Select(q => q.Id).ToList();
        if (old.Count == 0)
            return 0;
        var pruned = 0;
        foreach (var chunk in old.Chunk(500))
        {
            var blobs = await db.QuarantinedMail.AsNoTracking().Where(q => chunk.Contains(q.Id) && q.BlobSha256 != null).Select(q => q.BlobSha256).ToListAsync(cancellationToken);
            pruned += await Tombstone(db.QuarantinedMail.Where(q => chunk.Contains(q.Id) && q.DeletedAtMs == null), cancellationToken);
            await DeleteUnreferencedBlobsAsync(db, blobs, cancellationToken);
        }
        return pruned;
    }

    public async Task<IReadOnlyList<string>> QuarantinedAccountsAsync(CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.QuarantinedMail.AsNoTracking().Select(q => q.ChannelAccountId).Distinct().ToListAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<MailboxFolderState>> FoldersAsync(string channelAccountId, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var rows = await db.MailboxCursors.AsNoTracking().Where(c => c.ChannelAccountId == channelAccountId).ToListAsync(cancellationToken);
        return [.. rows.OrderBy(r => r.Folder, StringComparer.Ordinal).Select(r => new MailboxFolderState(r.Folder, (uint)r.UidValidity, (uint)r.LastUid, r.UpdatedAt))];
    }

    public async Task<AutomaticMailClaim> ClaimAsync(AutomaticMail mail, int maxPerRecipient, int maxPerAccount, TimeSpan window, CancellationToken cancellationToken = default)
    {
        var recipient = mail.Recipient.Trim().ToLowerInvariant();
        var recipientKey = RecipientKey(recipient);
        var at = mail.At.ToUnixTimeMilliseconds();
        await _claims.WaitAsync(cancellationToken);
        try
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            if (await db.AutomaticMail.AnyAsync(a => a.ChannelAccountId == mail.ChannelAccountId && a.Kind == mail.Kind && a.TicketNumber == mail.TicketNumber, cancellationToken))
                return AutomaticMailClaim.AlreadyClaimed;
            var since = at - (long)window.TotalMilliseconds;
            var recent = await db.AutomaticMail.CountAsync(a => a.RecipientKey == recipientKey && a.CreatedAtMs > since && a.State != AutomaticMailRecord.Suppressed, cancellationToken);
            var ofAccount = await db.AutomaticMail.CountAsync(a => a.ChannelAccountId == mail.ChannelAccountId && a.CreatedAtMs > since && a.State != AutomaticMailRecord.Suppressed, cancellationToken);
            var claim = recent >= maxPerRecipient || ofAccount >= maxPerAccount ? AutomaticMailClaim.OverCap : AutomaticMailClaim.Claimed;
            // A suppressed mail is kept too: the decision for this ticket is final, a redelivery does not send it later.
            db.AutomaticMail.Add(new AutomaticMailRecord
            {
                Id = mail.Id,
                ChannelAccountId = mail.ChannelAccountId,
                Kind = mail.Kind,
                TicketNumber = mail.TicketNumber,
                Recipient = recipient,
                RecipientKey = recipientKey,
                RecipientName = mail.RecipientName is { Length: > 200 } name ? name[..200] : mail.RecipientName,
                InReplyTo = mail.InReplyTo,
                Subject = mail.Subject is { Length: > 500 } subject ? subject[..500] : mail.Subject,
                Language = mail.Language,
                State = claim == AutomaticMailClaim.Claimed ? AutomaticMailRecord.Pending : AutomaticMailRecord.Suppressed,
                Error = claim == AutomaticMailClaim.Claimed ? null
                    : recent >= maxPerRecipient ? $"Not sent: {recipientKey} had {recent} automatic mail(s) in the last {window}."
                    : $"Not sent: channel {mail.ChannelAccountId} sent {ofAccount} automatic mail(s) in the last {window}.",
                CreatedAtMs = at,
                NextAttemptAtMs = at,
            });
            try
            {
                await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateException)
            {
                // Claimed at the same time by another node: one mail per ticket.
                await using var check = await contexts.CreateDbContextAsync(cancellationToken);
                if (await check.AutomaticMail.AnyAsync(a => a.ChannelAccountId == mail.ChannelAccountId && a.Kind == mail.Kind && a.TicketNumber == mail.TicketNumber, cancellationToken))
                    return AutomaticMailClaim.AlreadyClaimed;
                throw;
            }
            return claim;
        }
        finally
        {
            _claims.Release();
        }
    }

    /// <summary>
    /// The form of an address the per-recipient cap counts by: lower case, without a "+tag" (sub-addressing: every
    /// tag reaches the same mailbox), and for Gmail without dots and with googlemail.com as gmail.com. Spelling one
    /// victim's address many ways must not multiply the cap.
    /// </summary>
    internal static string RecipientKey(string address)
    {
        var lower = address.Trim().ToLowerInvariant();
        var at = lower.LastIndexOf('@');
        if (at < 1)
            return lower;
        var (local, domain) = (lower[..at], lower[(at + 1)..]);
        if (local.IndexOf('+') is var plus and > 0)
            local = local[..plus];
        if (domain is "gmail.com" or "googlemail.com")
            (local, domain) = (local.Replace(".", "", StringComparison.Ordinal), "gmail.com");
        return local + "@" + domain;
    }

    public async Task<IReadOnlyList<AutomaticMail>> DueAsync(DateTimeOffset now, int max, CancellationToken cancellationToken = default)
    {
        var due = now.ToUnixTimeMilliseconds();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var rows = await db.AutomaticMail.AsNoTracking()
            .Where(a => (a.State == AutomaticMailRecord.Pending || a.State == AutomaticMailRecord.Sending) && a.NextAttemptAtMs <= due)
            .OrderBy(a => a.NextAttemptAtMs).Take(max).ToListAsync(cancellationToken);
        return [.. rows.Select(a => new AutomaticMail(a.Id, a.ChannelAccountId, a.Kind, a.TicketNumber, a.Recipient, a.RecipientName, a.InReplyTo, a.Subject, a.Language,
            DateTimeOffset.FromUnixTimeMilliseconds(a.CreatedAtMs), a.Attempts, a.State == AutomaticMailRecord.Sending))];
    }

    public async Task MarkInFlightAsync(Guid id, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await db.AutomaticMail.Where(a => a.Id == id && a.State == AutomaticMailRecord.Pending)
            .ExecuteUpdateAsync(s => s.SetProperty(a => a.State, AutomaticMailRecord.Sending), cancellationToken);
    }

    public async Task CompleteAsync(Guid id, string? error, DateTimeOffset? retryAt, DateTimeOffset now, CancellationToken cancellationToken = default, bool unconfirmed = false)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var row = await db.AutomaticMail.SingleOrDefaultAsync(a => a.Id == id, cancellationToken);
        if (row is null)
            return;
        row.Attempts++;
        row.Error = error is { Length: > 2000 } ? error[..2000] : error;
        if (error is null)
        {
            row.State = AutomaticMailRecord.Sent;
            row.SentAtMs = now.ToUnixTimeMilliseconds();
        }
        else if (unconfirmed)
            row.State = AutomaticMailRecord.Unconfirmed;
        else if (retryAt is { } next)
        {
            // Not sent (refused or cut off before the data): queued again, the in-flight mark cleared.
            row.State = AutomaticMailRecord.Pending;
            row.NextAttemptAtMs = next.ToUnixTimeMilliseconds();
        }
        else
            row.State = AutomaticMailRecord.Failed;
        await db.SaveChangesAsync(cancellationToken);
    }
}
