using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Changes;

/// <summary>The change feed in the embedded SQLite file: the Changes table the store appends to, and the consumers' cursors.</summary>
internal sealed class SqliteChangeFeed(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer) : IChangeFeed
{
    private static readonly Func<CrmDbContext, long, int, IAsyncEnumerable<ChangeRecord>> ChangesAfter =
        EF.CompileAsyncQuery((CrmDbContext db, long after, int max) =>
            db.Changes.AsNoTracking().Where(c => c.Sequence > after).OrderBy(c => c.Sequence).Take(max));

    public async Task<IReadOnlyList<Change>> ReadAsync(long after, int max, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var changes = new List<Change>();
        await foreach (var row in ChangesAfter(db, after, max).WithCancellation(cancellationToken))
            changes.Add(row.ToChange());
        return changes;
    }

    public async Task<long> LastSequenceAsync(CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await StoreInitializer.FeedHeadAsync(db, cancellationToken);
    }

    /// <summary>The consumer's persisted position: every change up to it was handled (0 for a new consumer).</summary>
    public async Task<long> ReadCursorAsync(string consumer, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.ChangeCursors.AsNoTracking().Where(c => c.Consumer == consumer).Select(c => (long?)c.Sequence)
            .SingleOrDefaultAsync(cancellationToken) ?? 0;
    }

    /// <summary>Moves the consumer's cursor forward (never back) in a small transaction of its own.</summary>
    public async Task SaveCursorAsync(string consumer, long sequence, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO ChangeCursors (Consumer, Sequence) VALUES ({consumer}, {sequence})
            ON CONFLICT (Consumer) DO UPDATE SET Sequence = MAX(Sequence, excluded.Sequence)
            """, cancellationToken);
    }

    /// <summary>Moves the consumer's cursor forward (never back), unless it was rewound since the writer read it
    /// (review LH2): a rebuild's rewind bumps the consumer's rewind count in the same transaction, and a batch read
    /// under an older count (another node's dispatcher, in flight across the rewind and swap of a shared index) would
    /// raise the cursor past what the new index never got. False when refused: the writer reads the cursor again.</summary>
    public async Task<bool> SaveCursorAsync(string consumer, long sequence, long rewinds, CancellationToken cancellationToken)
    {
        var counter = RewindsName(consumer);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Database.ExecuteSqlAsync($"""
            INSERT INTO ChangeCursors (Consumer, Sequence)
            SELECT {consumer}, {sequence} WHERE COALESCE((SELECT Sequence FROM ChangeCursors WHERE Consumer = {counter}), 0) = {rewinds}
            ON CONFLICT (Consumer) DO UPDATE SET Sequence = MAX(Sequence, excluded.Sequence)
            """, cancellationToken) > 0;
    }

    /// <summary>How often the consumer's cursor was rewound (0 when never): read before the cursor, handed to
    /// <see cref="SaveCursorAsync(string, long, long, CancellationToken)"/>.</summary>
    public async Task<long> RewindsAsync(string consumer, CancellationToken cancellationToken) =>
        await FindCursorAsync(RewindsName(consumer), cancellationToken) ?? 0;

    /// <summary>The note counting a consumer's rewinds (in the cursor table; pruning ignores it).</summary>
    public static string RewindsName(string consumer) => consumer + "#rewinds";

    /// <summary>The consumer's persisted position, or null when it never handled a change under this name.</summary>
    public async Task<long?> FindCursorAsync(string consumer, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.ChangeCursors.AsNoTracking().Where(c => c.Consumer == consumer).Select(c => (long?)c.Sequence).SingleOrDefaultAsync(cancellationToken);
    }

    /// <summary>Writes a value under <paramref name="name"/> in the cursor table (not a consumer: pruning ignores it).
    /// <paramref name="raiseOnly"/>: never lower it, and never change a negative value (a flag the writer clears).</summary>
    public async Task SetNoteAsync(string name, long value, bool raiseOnly, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (raiseOnly)
            await db.Database.ExecuteSqlAsync($"""
                INSERT INTO ChangeCursors (Consumer, Sequence) VALUES ({name}, {value})
                ON CONFLICT (Consumer) DO UPDATE SET Sequence = CASE WHEN Sequence < 0 THEN Sequence ELSE MAX(Sequence, excluded.Sequence) END
                """, cancellationToken);
        else
            await db.Database.ExecuteSqlAsync($"""
                INSERT INTO ChangeCursors (Consumer, Sequence) VALUES ({name}, {value})
                ON CONFLICT (Consumer) DO UPDATE SET Sequence = excluded.Sequence
                """, cancellationToken);
    }

    /// <summary>Removes a note written by <see cref="SetNoteAsync"/>.</summary>
    public async Task DeleteNoteAsync(string name, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await db.ChangeCursors.Where(c => c.Consumer == name).ExecuteDeleteAsync(cancellationToken);
    }

    /// <summary>What a rebuild hold's name carries after its consumer's name: <c>{consumer}#rebuilding:{node}:{run}</c>.</summary>
    public const string RebuildHoldMarker = "#rebuilding:";

    /// <summary>Writes (or rewrites) a rebuild's hold on pruning at <paramref name="sequence"/>, refreshed at <paramref name="since"/>.</summary>
    public async Task HoldAsync(string name, string consumer, string node, long sequence, DateTimeOffset since, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var ticks = since.UtcTicks;
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO RebuildHolds (Name, Consumer, Node, Sequence, Since) VALUES ({name}, {consumer}, {node}, {sequence}, {ticks})
            ON CONFLICT (Name) DO UPDATE SET Sequence = excluded.Sequence, Since = excluded.Since
            """, cancellationToken);
    }

    /// <summary>Marks a hold as alive at <paramref name="since"/>, raising (never lowering) it to <paramref name="raiseTo"/>.
    /// False when the hold is gone (pruning removed it as stale).</summary>
    public async Task<bool> RefreshHoldAsync(string name, long raiseTo, DateTimeOffset since, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var ticks = since.UtcTicks;
        return await db.Database.ExecuteSqlAsync(
            $"UPDATE RebuildHolds SET Since = {ticks}, Sequence = MAX(Sequence, {raiseTo}) WHERE Name = {name}", cancellationToken) > 0;
    }

    /// <summary>Removes one run's hold.</summary>
    public async Task ReleaseHoldAsync(string name, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await db.RebuildHolds.Where(h => h.Name == name).ExecuteDeleteAsync(cancellationToken);
    }

    /// <summary>Removes every hold of <paramref name="node"/> not refreshed since <paramref name="before"/> (this process's
    /// start) but those named in <paramref name="except"/> (its runs now), whatever consumer they name (a node restarted
    /// with another index folder has another consumer name). Returns them.</summary>
    public async Task<IReadOnlyList<string>> ReleaseNodeHoldsAsync(string node, IReadOnlyCollection<string> except, DateTimeOffset before, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var rows = await db.RebuildHolds.AsNoTracking().Where(h => h.Node == node && !except.Contains(h.Name)).ToListAsync(cancellationToken);
        List<string> names = [];
        foreach (var row in rows.Where(h => h.Since < before))
        {
            // Only as read: a run of this process that rewrote it since keeps it.
            if (await db.RebuildHolds.Where(h => h.Name == row.Name && h.Since == row.Since).ExecuteDeleteAsync(cancellationToken) > 0)
                names.Add(row.Name);
        }
        return names;
    }

    public async Task<IReadOnlyList<RebuildHoldRecord>> HoldsAsync(CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.RebuildHolds.AsNoTracking().OrderBy(h => h.Name).ToListAsync(cancellationToken);
    }

    /// <summary>Moves the consumer's cursor back to <paramref name="sequence"/> (never forward), so the changes after it are
    /// handed again. A consumer without a cursor gets this one: the rebuilt index it writes holds everything up to here,
    /// and reading from 0 instead would find a pruned feed's hole and rebuild once more.</summary>
    public async Task RewindCursorAsync(string consumer, long sequence, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // One transaction: a cursor save that read the old count is refused from the moment the cursor is back (LH2).
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var counter = RewindsName(consumer);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO ChangeCursors (Consumer, Sequence) VALUES ({counter}, 1)
            ON CONFLICT (Consumer) DO UPDATE SET Sequence = Sequence + 1
            """, cancellationToken);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO ChangeCursors (Consumer, Sequence) VALUES ({consumer}, {sequence})
            ON CONFLICT (Consumer) DO UPDATE SET Sequence = MIN(Sequence, excluded.Sequence)
            """, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>The oldest change still in the feed (older ones were pruned), or null when the feed is empty.</summary>
    public async Task<long?> OldestSequenceAsync(CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Changes.AsNoTracking().OrderBy(c => c.Sequence).Select(c => (long?)c.Sequence).FirstOrDefaultAsync(cancellationToken);
    }

    /// <summary>
    /// Deletes changes committed before <paramref name="committedBefore"/> that every one of <paramref name="consumers"/>
    /// has passed, in chunks so the store's writer never waits long. Returns how many rows went, and the consumers whose
    /// cursors kept changes older than the retention. A rebuild hold not refreshed since <paramref name="holdsStaleBefore"/>
    /// is a dead run's (its node was killed and never came back, or came back under another name): it is deleted and
    /// named in the result, so one lost node cannot stop pruning for good (review LG1).
    /// </summary>
    public async Task<PruneResult> PruneAsync(IReadOnlyCollection<string> consumers, DateTimeOffset committedBefore, CancellationToken cancellationToken,
        DateTimeOffset? holdsStaleBefore = null)
    {
        const int Chunk = 10_000;
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var stored = await db.ChangeCursors.AsNoTracking().Where(c => consumers.Contains(c.Consumer)).ToDictionaryAsync(c => c.Consumer, c => c.Sequence, cancellationToken);
        // A consumer without a cursor has handled nothing yet.
        var cursors = consumers.ToDictionary(name => name, name => stored.GetValueOrDefault(name), StringComparer.Ordinal);
        // A running index rebuild, on any node, rewinds its indexer to where it began when it swaps: what follows must
        // still be there then, or the rebuilt index misses it (review LF3).
        // Each run has its own row (nodes sharing an index run their own), so pruning stops at the lowest.
        List<string> stale = [];
        foreach (var hold in await db.RebuildHolds.AsNoTracking().ToListAsync(cancellationToken))
        {
            if (holdsStaleBefore is { } bound && hold.Since < bound)
            {
                await db.RebuildHolds.Where(h => h.Name == hold.Name && h.Since == hold.Since).ExecuteDeleteAsync(cancellationToken);
                stale.Add(hold.Name);
                continue;
            }
            cursors[hold.Name] = hold.Sequence;
        }
        var passedByAll = cursors.Values.DefaultIfEmpty(long.MaxValue).Min();
        // Sequences follow commit order, so the first change young enough to keep bounds the old ones; finding it
        // reads only the rows that are about to be deleted.
        var firstKept = await db.Changes.AsNoTracking().Where(c => c.At >= committedBefore).OrderBy(c => c.Sequence)
            .Select(c => (long?)c.Sequence).FirstOrDefaultAsync(cancellationToken);
        var upTo = Math.Min(passedByAll, firstKept is { } kept ? kept - 1 : long.MaxValue);
        var deleted = 0;
        while (await db.Changes.OrderBy(c => c.Sequence).Select(c => (long?)c.Sequence).FirstOrDefaultAsync(cancellationToken) is { } oldest
            && oldest <= upTo)
        {
            var chunkEnd = Math.Min(upTo, oldest + Chunk - 1);
            deleted += await db.Changes.Where(c => c.Sequence <= chunkEnd).ExecuteDeleteAsync(cancellationToken);
        }
        // Old enough to go but still here: the consumers that have not handled all of them hold them back.
        IReadOnlyList<string> heldBackBy = [];
        // Commit order is sequence order, so the oldest row tells whether any old change is left (an index seek, no scan).
        if (await db.Changes.AsNoTracking().OrderBy(c => c.Sequence).Take(1).AnyAsync(c => c.At < committedBefore, cancellationToken))
        {
            var newestOld = firstKept is { } keptFrom ? keptFrom - 1 : await db.Changes.MaxAsync(c => c.Sequence, cancellationToken);
            heldBackBy = [.. cursors.Where(c => c.Value < newestOld).Select(c => c.Key).Order(StringComparer.Ordinal)];
        }
        return new PruneResult(deleted, heldBackBy, stale);
    }
}

/// <summary>What one prune did: rows deleted, the consumers and holds that kept old rows, and the stale holds it removed.</summary>
public sealed record PruneResult(int Deleted, IReadOnlyList<string> HeldBackBy, IReadOnlyList<string> StaleHolds)
{
    public void Deconstruct(out int deleted, out IReadOnlyList<string> heldBackBy) => (deleted, heldBackBy) = (Deleted, HeldBackBy);
}
