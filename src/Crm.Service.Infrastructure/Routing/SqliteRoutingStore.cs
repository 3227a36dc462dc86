using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Routing;

/// <summary>A routing/SLA document (see <see cref="IRoutingStore"/>).</summary>
public sealed class RoutingDocumentRecord
{
    public required string Kind { get; set; }
    public required string Id { get; set; }
    public required string Json { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary><see cref="IRoutingStore"/> on the embedded SQLite file (an upsert per put; SQLite's commit is durable).</summary>
internal sealed class SqliteRoutingStore(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer, TimeProvider time) : IRoutingStore
{
    public async Task<string?> GetAsync(string kind, string id, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.RoutingDocuments.AsNoTracking().Where(d => d.Kind == kind && d.Id == id).Select(d => d.Json).FirstOrDefaultAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<string>> ListAsync(string kind, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.RoutingDocuments.AsNoTracking().Where(d => d.Kind == kind).OrderBy(d => d.Id).Select(d => d.Json).ToListAsync(cancellationToken);
    }

    public async Task PutAsync(string kind, string id, string json, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow().UtcTicks;
        await db.Database.ExecuteSqlInterpolatedAsync(
            $"INSERT INTO RoutingDocuments (Kind, Id, Json, UpdatedAt) VALUES ({kind}, {id}, {json}, {now}) ON CONFLICT (Kind, Id) DO UPDATE SET Json = excluded.Json, UpdatedAt = excluded.UpdatedAt",
            cancellationToken);
    }

    public async Task<string?> FirstCustomerTextAsync(long ticketNumber, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var text = await db.Messages.AsNoTracking()
            .Where(m => m.TicketNumber == ticketNumber && m.Direction == MessageDirection.Inbound)
            .OrderBy(m => m.CreatedAt).ThenBy(m => m.Id)
            .Select(m => m.Text ?? "").FirstOrDefaultAsync(cancellationToken);
        return text is { Length: > IRoutingStore.MaxConditionText } ? text[..IRoutingStore.MaxConditionText] : text;
    }

    public async Task<bool> DeleteAsync(string kind, string id, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.RoutingDocuments.Where(d => d.Kind == kind && d.Id == id).ExecuteDeleteAsync(cancellationToken) > 0;
    }
}
