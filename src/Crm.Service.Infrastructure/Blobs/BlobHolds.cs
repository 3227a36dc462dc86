using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Blobs;

/// <summary>One durable hold on a blob (see <see cref="IBlobHolds"/>): a writer's (<see cref="Deleting"/> false) keeps
/// deleters away from bytes a row is about to name; a deleter's (true) makes writers wait while it checks and deletes.
/// Expired holds count for nothing (a crash left them) and the orphan sweep removes them.</summary>
public sealed class BlobHoldRecord
{
    public Guid Id { get; set; }
    public required string Sha256 { get; set; }
    public bool Deleting { get; set; }
    /// <summary>UTC ticks of the system clock (the same clock as the blob files' ages).</summary>
    public long ExpiresAtTicks { get; set; }
}

/// <summary>
/// The holds as rows of the shared SQLite file. Taking one is a single conditional INSERT (SQLite runs each statement
/// atomically, whichever node writes it): a writer's hold is inserted only while no live delete hold of the same bytes
/// exists, a deleter's only while no live writer's hold exists. So either the deleter holds first (the writer waits, then
/// puts the bytes again) or the writer does (the deleter leaves the blob).
/// </summary>
internal sealed class SqliteBlobHolds(IDbContextFactory<CrmDbContext> contexts) : IBlobHolds
{
    /// <summary>How long a writer's hold lasts if it is never released (a crash): longer than any put and commit.</summary>
    internal static TimeSpan WriterHoldLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long a writer waits for a delete hold of the same bytes to go (review EN6): a live delete takes
    /// milliseconds, so a longer one was left by a crashed deleter (it lives 5 minutes), and the writer (a reply inside a
    /// non-reentrant ticket grain, an inbound mail) fails as retryable rather than block everything behind it.</summary>
    internal static TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(30);

    public async Task<IAsyncDisposable> HoldAsync(IReadOnlyCollection<string> sha256s, CancellationToken cancellationToken = default)
    {
        var ids = new List<Guid>();
        try
        {
            var giveUpAt = DateTimeOffset.UtcNow + MaxWait;
            foreach (var sha256 in sha256s.Distinct(StringComparer.Ordinal))
            {
                for (var wait = TimeSpan.FromMilliseconds(20); ; wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, TimeSpan.FromSeconds(1).Ticks)))
                {
                    var id = Guid.CreateVersion7();
                    await using var db = await contexts.CreateDbContextAsync(cancellationToken);
                    if (await BlobHoldSql.TryHoldAsync(db, id, sha256, deleting: false, WriterHoldLifetime, cancellationToken))
                    {
                        ids.Add(id);
                        break;
                    }
                    // A delete of the same bytes is checking or deleting right now (milliseconds); then the put writes them again.
                    if (DateTimeOffset.UtcNow >= giveUpAt)
                    {
                        // Expired holds are pruned on the way out, so the table does not keep what crashes left (EN6).
                        await BlobHoldSql.PruneExpiredAsync(db, CancellationToken.None);
                        throw new TimeoutException($"The file {sha256[..12]}… is being deleted elsewhere and the delete has not finished within {MaxWait.TotalSeconds:0} s; try again.");
                    }
                    await Task.Delay(wait, cancellationToken);
                }
            }
        }
        catch
        {
            await ReleaseAsync(ids);
            throw;
        }
        return new Release(this, ids);
    }

    private async Task ReleaseAsync(List<Guid> ids)
    {
        if (ids.Count == 0)
            return;
        try
        {
            await using var db = await contexts.CreateDbContextAsync(CancellationToken.None);
            await db.Set<BlobHoldRecord>().Where(h => ids.Contains(h.Id)).ExecuteDeleteAsync(CancellationToken.None);
        }
        catch (Exception)
        {
            // Best effort: an unreleased hold expires, and the blob's rows (committed) name it anyway.
        }
    }

    private sealed class Release(SqliteBlobHolds holds, List<Guid> ids) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await holds.ReleaseAsync(ids);
    }
}

/// <summary>The conditional inserts both sides use.</summary>
internal static class BlobHoldSql
{
    /// <summary>How long a deleter's hold lasts if it is never released (a crash between check and delete).</summary>
    internal static readonly TimeSpan DeleterHoldLifetime = TimeSpan.FromMinutes(5);

    public static async Task<bool> TryHoldAsync(CrmDbContext db, Guid id, string sha256, bool deleting, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow.UtcTicks;
        var expires = now + lifetime.Ticks;
        var flag = deleting ? 1 : 0;
        var other = deleting ? 0 : 1;
        var inserted = await db.Database.ExecuteSqlInterpolatedAsync(
            $"INSERT INTO \"BlobHolds\" (\"Id\", \"Sha256\", \"Deleting\", \"ExpiresAtTicks\") SELECT {id.ToString().ToUpperInvariant()}, {sha256}, {flag}, {expires} WHERE NOT EXISTS (SELECT 1 FROM \"BlobHolds\" WHERE \"Sha256\" = {sha256} AND \"Deleting\" = {other} AND \"ExpiresAtTicks\" > {now})",
            cancellationToken);
        return inserted == 1;
    }

    public static Task ReleaseAsync(CrmDbContext db, Guid id) =>
        db.Set<BlobHoldRecord>().Where(h => h.Id == id).ExecuteDeleteAsync(CancellationToken.None);

    /// <summary>Removes expired holds (left by crashes); returns how many.</summary>
    public static Task<int> PruneExpiredAsync(CrmDbContext db, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow.UtcTicks;
        return db.Set<BlobHoldRecord>().Where(h => h.ExpiresAtTicks <= now).ExecuteDeleteAsync(cancellationToken);
    }
}
