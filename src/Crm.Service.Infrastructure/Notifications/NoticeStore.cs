using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Notifications;

/// <summary>A time-driven notice (SLA warning or breach, follow-up due or missed) kept for one console person, so someone
/// offline when it fired still finds it on the Notices page. <see cref="Cause"/> names what caused it (the milestone),
/// and (UserId, Cause) is unique: a repeated tick, a retried batch or a redelivered change never stores it twice.</summary>
public sealed class NoticeRecord
{
    public long Id { get; set; }
    public required string UserId { get; set; }
    public required string Cause { get; set; }
    public required string Kind { get; set; }
    public long? Ticket { get; set; }
    public Guid? CustomerId { get; set; }
    public string? By { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? ReadAt { get; set; }
}

/// <summary>Stores notices per recipient (idempotent per cause) and lists them for the console.</summary>
public sealed class NoticeStore(IDbContextFactory<CrmDbContext> contexts, TimeProvider time)
{
    public const int MaxCause = 300;
    public const int PageSize = 50;
    /// <summary>The bell shows "99+" beyond this, so counting never walks a long unread backlog.</summary>
    public const int MaxUnreadCount = 99;

    /// <summary>Stores the notice for each of <paramref name="userIds"/> unless that person already has it (same cause) and
    /// returns those it was new for: only they get a live push, so a repeated call neither doubles a row nor a push.</summary>
    public async Task<IReadOnlyList<string>> StoreAsync(IEnumerable<string> userIds, string cause, string kind, long? ticket, Guid? customerId, string? by,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(cause);
        if (cause.Length > MaxCause)
            cause = cause[..MaxCause];
        var fresh = new List<string>();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow();
        // The columns as EF stores them: a Guid as upper-case text, a time as UTC ticks.
        var customer = customerId?.ToString("D").ToUpperInvariant();
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        foreach (var userId in userIds.Distinct(StringComparer.Ordinal))
        {
            // INSERT OR IGNORE on the unique (UserId, Cause): the row count says whether it was new.
            var inserted = await db.Database.ExecuteSqlInterpolatedAsync($"""
                INSERT OR IGNORE INTO "Notices" ("UserId", "Cause", "Kind", "Ticket", "CustomerId", "By", "CreatedAt", "ReadAt")
                VALUES ({userId}, {cause}, {kind}, {ticket}, {customer}, {by}, {now.UtcTicks}, NULL)
                """, cancellationToken);
            if (inserted > 0)
                fresh.Add(userId);
        }
        await transaction.CommitAsync(cancellationToken);
        return fresh;
    }

    /// <summary>One page of the person's notices, newest first, before the notice id <paramref name="before"/>.</summary>
    public async Task<IReadOnlyList<NoticeRecord>> ListAsync(string userId, long? before, int take = PageSize, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var query = db.Notices.AsNoTracking().Where(n => n.UserId == userId);
        if (before is { } id)
            query = query.Where(n => n.Id < id);
        return await query.OrderByDescending(n => n.Id).Take(Math.Clamp(take, 1, 200)).ToListAsync(cancellationToken);
    }

    public async Task<int> UnreadCountAsync(string userId, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Notices.AsNoTracking().Where(n => n.UserId == userId && n.ReadAt == null).Take(MaxUnreadCount + 1).CountAsync(cancellationToken);
    }

    /// <summary>Marks one of the person's notices read (null: all of them); another person's notice is never touched.</summary>
    public async Task<int> MarkReadAsync(string userId, long? id, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var query = db.Notices.Where(n => n.UserId == userId && n.ReadAt == null);
        if (id is { } one)
            query = query.Where(n => n.Id == one);
        var now = time.GetUtcNow();
        return await query.ExecuteUpdateAsync(s => s.SetProperty(n => n.ReadAt, now), cancellationToken);
    }

    /// <summary>At most this many rows per delete, so a large backlog never holds the write lock for long.</summary>
    public const int PruneBatch = 1000;

    /// <summary>Deletes notices read more than <paramref name="keep"/> ago (never an unread one); returns how many.</summary>
    public async Task<int> PruneReadAsync(TimeSpan keep, CancellationToken cancellationToken = default)
    {
        var cutoff = (time.GetUtcNow() - keep).UtcTicks;
        var total = 0;
        while (true)
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            // ReadAt is stored as UTC ticks (see CrmDbContext's converter).
            var deleted = await db.Database.ExecuteSqlInterpolatedAsync($"""
                DELETE FROM "Notices" WHERE "Id" IN
                    (SELECT "Id" FROM "Notices" WHERE "ReadAt" IS NOT NULL AND "ReadAt" < {cutoff} LIMIT {PruneBatch})
                """, cancellationToken);
            total += deleted;
            if (deleted < PruneBatch)
                return total;
        }
    }
}
