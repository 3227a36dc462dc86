using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Store;

/// <summary>
/// A merged customer's events, logged calls and documents belong to the customer it was merged into. A merge moves them
/// in its own commit (reviews CT10, CS3); stores with merges from before that still hold them on the source, where no
/// page lists them. <see cref="MoveLeftoversAsync"/> moves those once, at start.
/// </summary>
public static class MergedCustomerContent
{
    /// <summary>The Sequences row that says the one-off move was done (so a restart does not scan the customers again).</summary>
    public const string Marker = "fixup:merged-customer-content";

    /// <summary>Merges of merges are followed this deep (the merge coordinator refuses nothing deeper in practice; a
    /// cycle, which a merge never makes, stops here too).</summary>
    private const int MaxHops = 64;

    /// <summary>The customer <paramref name="id"/>'s content belongs to now: itself, or the end of its merge chain. Read
    /// inside the transaction that inserts the content (review FX8): a merge sets the source's MergedInto in a commit
    /// before the commit that moves its content, so an insert that sees no MergedInto is moved by that later commit, and
    /// one that sees it goes to the target directly. Nothing is left on a merged source either way.</summary>
    public static async Task<Guid> OwnerAsync(CrmDbContext db, Guid id, CancellationToken cancellationToken = default)
    {
        for (var hops = 0; hops < MaxHops; hops++)
        {
            var next = await db.Customers.AsNoTracking().Where(c => c.Id == id).Select(c => c.MergedInto).FirstOrDefaultAsync(cancellationToken);
            if (next is not { } into)
                break;
            id = into;
        }
        return id;
    }

    /// <summary>Moves the source's events and documents to <paramref name="to"/> in the caller's transaction. An event id
    /// the target already has (the same order posted to both) is kept, suffixed with the source, rather than break the
    /// move on the unique index.</summary>
    public static async Task MoveAsync(CrmDbContext db, Guid from, Guid to, CancellationToken cancellationToken = default)
    {
        await db.CustomerDocuments.Where(d => d.CustomerId == from)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.CustomerId, to), cancellationToken);
        var suffix = "@merged:" + from.ToString("N");
        await db.CustomerEvents.Where(e => e.CustomerId == from && db.CustomerEvents.Any(t => t.CustomerId == to && t.ClientEventId == e.ClientEventId))
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.ClientEventId, e => e.ClientEventId + suffix), cancellationToken);
        await db.CustomerEvents.Where(e => e.CustomerId == from)
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.CustomerId, to), cancellationToken);
    }

    /// <summary>Moves what customers merged before merges carried it still hold to the customer at the end of their
    /// merge chain, in one transaction with the marker. Idempotent: a second run (or a run after a crash before the
    /// commit) finds nothing left to move.</summary>
    public static async Task MoveLeftoversAsync(CrmDbContext db, CancellationToken cancellationToken = default)
    {
        if (await db.Sequences.AnyAsync(s => s.Name == Marker, cancellationToken))
            return;
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        // Again under the write lock: another node starting on the same store may have run it meanwhile, and a second
        // marker insert would fail this node's start for good (review CR2).
        if (await db.Sequences.AnyAsync(s => s.Name == Marker, cancellationToken))
            return;
        var merged = await db.Customers.AsNoTracking().Where(c => c.MergedInto != null)
            .Select(c => new { c.Id, Into = c.MergedInto!.Value }).ToDictionaryAsync(c => c.Id, c => c.Into, cancellationToken);
        if (merged.Count > 0)
        {
            var sources = merged.Keys.ToList();
            var holders = await db.CustomerEvents.Where(e => sources.Contains(e.CustomerId)).Select(e => e.CustomerId)
                .Union(db.CustomerDocuments.Where(d => sources.Contains(d.CustomerId)).Select(d => d.CustomerId))
                .ToListAsync(cancellationToken);
            foreach (var source in holders.Distinct())
            {
                var owner = source;
                for (var hops = 0; hops < MaxHops && merged.TryGetValue(owner, out var next); hops++)
                    owner = next;
                if (owner != source)
                    await MoveAsync(db, source, owner, cancellationToken);
            }
        }
        await db.Database.ExecuteSqlRawAsync("INSERT INTO Sequences (Name, Next) VALUES ({0}, 1) ON CONFLICT(Name) DO NOTHING", [Marker], cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }
}
