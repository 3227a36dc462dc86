using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Leases;

/// <summary>
/// Connector leases in the embedded store, each grant one UPSERT whose WHERE clause is the rule (free, expired, or the
/// holder's own), followed by a read of the row in the same transaction. SQLite serializes writers on the file, so two
/// silos (or two hosts) on one store cannot both take a lease; the commit is fsynced like every other.
/// </summary>
internal sealed class SqliteConnectorLeaseStore(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer) : IConnectorLeaseStore
{
    public async Task<ConnectorLeaseRecord?> TryTakeAsync(string key, string holder, DateTimeOffset now, DateTimeOffset expiresAt, bool onlyIfHolder, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        long nowTicks = now.UtcTicks, expiresTicks = expiresAt.UtcTicks;
        if (onlyIfHolder)
            await db.Database.ExecuteSqlAsync(
                $"UPDATE ConnectorLeases SET ExpiresAt = {expiresTicks} WHERE Key = {key} AND Holder = {holder}", cancellationToken);
        else
            // On the right of SET the old row's values are read: the generation goes up when the holder changes.
            await db.Database.ExecuteSqlAsync($"""
                INSERT INTO ConnectorLeases (Key, Holder, ExpiresAt, Generation, AcquiredAt) VALUES ({key}, {holder}, {expiresTicks}, 1, {nowTicks})
                ON CONFLICT (Key) DO UPDATE SET
                    Generation = CASE WHEN Holder IS excluded.Holder THEN Generation ELSE Generation + 1 END,
                    AcquiredAt = CASE WHEN Holder IS excluded.Holder THEN AcquiredAt ELSE excluded.AcquiredAt END,
                    Holder = excluded.Holder,
                    ExpiresAt = excluded.ExpiresAt
                WHERE Holder IS excluded.Holder OR Holder IS NULL OR ExpiresAt <= {nowTicks}
                """, cancellationToken);
        var row = await db.ConnectorLeases.AsNoTracking().SingleOrDefaultAsync(l => l.Key == key, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return row;
    }

    public async Task ReleaseAsync(string key, string holder, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await db.Database.ExecuteSqlAsync($"UPDATE ConnectorLeases SET Holder = NULL WHERE Key = {key} AND Holder = {holder}", cancellationToken);
    }

    public async Task<ConnectorLeaseRecord?> FindAsync(string key, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.ConnectorLeases.AsNoTracking().SingleOrDefaultAsync(l => l.Key == key, cancellationToken);
    }
}

internal static class ConnectorLeaseModel
{
    public static void Configure(ModelBuilder model) => model.Entity<ConnectorLeaseRecord>(e =>
    {
        e.ToTable("ConnectorLeases");
        e.HasKey(l => l.Key);
        e.Property(l => l.Key).HasMaxLength(200);
        e.Property(l => l.Holder).HasMaxLength(200);
    });
}
