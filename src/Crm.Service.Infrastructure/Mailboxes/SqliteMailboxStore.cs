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
    IOptions<IngestOptions> ingest,
    TimeProvider time) : IConversationLookup, IMailboxStateStore, IMailboxAdminStore
{
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
        // Rows only: a blob (raw sources over MaxInlineRawSourceBytes) is content-addressed and may be shared.
        return await db.QuarantinedMail.Where(q => q.ChannelAccountId == channelAccountId && q.Folder == folder && q.At < keptBefore).ExecuteDeleteAsync(cancellationToken);
    }

    public async Task<bool> QuarantineAsync(QuarantinedMail mail, CancellationToken cancellationToken = default)
    {
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(mail.RawSource));
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (await db.QuarantinedMail.AnyAsync(q => q.ChannelAccountId == mail.ChannelAccountId && q.Sha256 == sha256, cancellationToken))
            return false;
        var row = new QuarantinedMailRecord
        {
            Id = Guid.CreateVersion7(mail.At),
            ChannelAccountId = mail.ChannelAccountId,
            Folder = mail.Folder,
            UidValidity = mail.UidValidity,
            Uid = mail.Uid,
            Reason = mail.Reason.Length <= 2000 ? mail.Reason : mail.Reason[..2000],
            Sha256 = sha256,
            Length = mail.RawSource.LongLength,
            At = mail.At,
        };
        // The blob is fsynced before the row that names it is committed.
        if (mail.RawSource.Length <= ingest.Value.MaxInlineRawSourceBytes)
            row.Content = mail.RawSource;
        else
            row.BlobSha256 = (await blobs.PutAsync(mail.RawSource, cancellationToken)).Sha256;
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
        var rows = db.QuarantinedMail.AsNoTracking().Where(q => q.ChannelAccountId == channelAccountId);
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
        var q = await db.QuarantinedMail.AsNoTracking().SingleOrDefaultAsync(q => q.Id == id && q.ChannelAccountId == channelAccountId, cancellationToken);
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
        // The blob of a large source stays: blobs are content-addressed and may be shared with a stored message.
        return await db.QuarantinedMail.Where(q => q.Id == id && q.ChannelAccountId == channelAccountId).ExecuteDeleteAsync(cancellationToken) > 0;
    }

    public async Task<int> PruneQuarantineAsync(IReadOnlyCollection<string> channelAccountIds, DateTimeOffset before, CancellationToken cancellationToken = default)
    {
        if (channelAccountIds.Count == 0)
            return 0;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // SQLite cannot compare DateTimeOffset columns; the quarantine is small (one row per refused mail), so the ages are read.
        var ids = await db.QuarantinedMail.AsNoTracking().Where(q => channelAccountIds.Contains(q.ChannelAccountId)).Select(q => new { q.Id, q.At }).ToListAsync(cancellationToken);
        var old = ids.Where(q => q.At < before).Select(q => q.Id).ToList();
        if (old.Count == 0)
            return 0;
        return await db.QuarantinedMail.Where(q => old.Contains(q.Id)).ExecuteDeleteAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<MailboxFolderState>> FoldersAsync(string channelAccountId, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var rows = await db.MailboxCursors.AsNoTracking().Where(c => c.ChannelAccountId == channelAccountId).ToListAsync(cancellationToken);
        return [.. rows.OrderBy(r => r.Folder, StringComparer.Ordinal).Select(r => new MailboxFolderState(r.Folder, (uint)r.UidValidity, (uint)r.LastUid, r.UpdatedAt))];
    }
}
